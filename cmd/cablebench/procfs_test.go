package main

import (
	"os"
	"testing"
)

const sampleStatus = `Name:	gocable
Umask:	0022
State:	S (sleeping)
Pid:	4535
VmPeak:	 1252284 kB
VmHWM:	   38000 kB
VmRSS:	   37904 kB
RssAnon:	   30000 kB
Threads:	10
voluntary_ctxt_switches:	120
`

func TestStatusField(t *testing.T) {
	tests := []struct {
		status, field string
		want          int64
		wantErr       bool
	}{
		{sampleStatus, "VmRSS", 37904, false},
		{sampleStatus, "VmHWM", 38000, false},
		{sampleStatus, "Threads", 10, false},
		{sampleStatus, "Pid", 4535, false},
		{sampleStatus, "VmSwap", 0, true},
		{sampleStatus, "Vm", 0, true},           // a prefix of a name is not a name
		{"VmRSS:\n", "VmRSS", 0, true},          // no value
		{"VmRSS:\tmany kB\n", "VmRSS", 0, true}, // not a number
		{"VmRSS:\t12 kB", "VmRSS", 12, false},   // no final newline
		{"", "VmRSS", 0, true},
	}
	for _, tt := range tests {
		got, err := statusField([]byte(tt.status), tt.field)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("statusField(%.20q, %q) = %d, %v; want %d, error %v", tt.status, tt.field, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"plain", "4535 (gocable) S 1 4535 4535 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 10 0 123 1000 900 18446744073709551615", 325, false},
		{"spaces and parens in name", "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 10, false},
		{"too few fields", "77 (x) R 1 2 3", 0, true},
		{"no name", "77 x R 1 2 3 4 5 6 7 8 9 10 11 12 13", 0, true},
		{"bad utime", "77 (x) R 1 77 77 0 -1 0 0 0 0 0 a 3 0", 0, true},
	}
	for _, tt := range tests {
		got, err := parseStatCPU([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: parseStatCPU = %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseLoadAvg(t *testing.T) {
	tests := []struct {
		in      string
		want    LoadAvg
		wantErr bool
	}{
		{"0.52 0.58 0.59 1/467 12345\n", LoadAvg{0.52, 0.58, 0.59}, false},
		{"4.66 3.32 1.83", LoadAvg{4.66, 3.32, 1.83}, false},
		{"1 2", LoadAvg{}, true},
		{"a b c", LoadAvg{}, true},
	}
	for _, tt := range tests {
		got, err := parseLoadAvg([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseLoadAvg(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := (LoadAvg{1, 2.5, 0.125}).String(); got != "1.00, 2.50, 0.12" {
		t.Errorf("LoadAvg.String() = %q", got)
	}
}

func TestReadSelf(t *testing.T) {
	pid := os.Getpid()
	if rss, err := readRSS(pid); err != nil || rss <= 0 {
		t.Errorf("readRSS(self) = %d, %v; want > 0", rss, err)
	}
	if n, err := readThreads(pid); err != nil || n < 1 {
		t.Errorf("readThreads(self) = %d, %v; want >= 1", n, err)
	}
	if _, err := readCPU(pid); err != nil {
		t.Errorf("readCPU(self): %v", err)
	}
	if _, err := readRSS(-1); err == nil {
		t.Errorf("readRSS(-1) succeeded")
	}
}
