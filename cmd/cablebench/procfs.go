package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat. Linux reports them
// in USER_HZ, which is 100 on every architecture Go supports.
const userHZ = 100

// procStatus reads /proc/PID/status.
func procStatus(pid int) ([]byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("cablebench: server process: %w", err)
	}
	return b, nil
}

// readRSS returns the resident set size of process pid in bytes.
func readRSS(pid int) (int64, error) {
	b, err := procStatus(pid)
	if err != nil {
		return 0, err
	}
	kb, err := statusField(b, "VmRSS")
	if err != nil {
		return 0, err
	}
	return kb * 1024, nil
}

// readThreads returns the number of threads of process pid.
func readThreads(pid int) (int64, error) {
	b, err := procStatus(pid)
	if err != nil {
		return 0, err
	}
	return statusField(b, "Threads")
}

// statusField returns the number of a "Name:\t  123 kB" line of
// /proc/PID/status (the unit, if any, is dropped).
func statusField(status []byte, name string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(name+":"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			return 0, fmt.Errorf("cablebench: /proc status: %s has no value", name)
		}
		n, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cablebench: /proc status: %s: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("cablebench: /proc status: no %s line", name)
}

// readCPU returns the CPU time (user plus system) process pid has used.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cablebench: server process: %w", err)
	}
	ticks, err := parseStatCPU(b)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatCPU returns utime+stime, in ticks, from /proc/PID/stat. The
// command name (field 2) is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("cablebench: /proc stat: no command name")
	}
	// Fields after the name start at field 3 (state); utime and stime are
	// fields 14 and 15 (proc(5)).
	fields := bytes.Fields(stat[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("cablebench: /proc stat: %d fields, want at least %d", len(fields)+2, stime+3)
	}
	u, err := strconv.ParseUint(string(fields[utime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cablebench: /proc stat: utime: %w", err)
	}
	s, err := strconv.ParseUint(string(fields[stime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cablebench: /proc stat: stime: %w", err)
	}
	return u + s, nil
}

// LoadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg.
type LoadAvg [3]float64

// readLoadAvg returns the machine's load averages, or zeros if they cannot
// be read.
func readLoadAvg() LoadAvg {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return LoadAvg{}
	}
	l, _ := parseLoadAvg(b)
	return l
}

// parseLoadAvg parses "0.52 0.58 0.59 1/467 12345".
func parseLoadAvg(b []byte) (LoadAvg, error) {
	var l LoadAvg
	fields := bytes.Fields(b)
	if len(fields) < 3 {
		return l, fmt.Errorf("cablebench: /proc/loadavg: %d fields, want at least 3", len(fields))
	}
	for i := range l {
		f, err := strconv.ParseFloat(string(fields[i]), 64)
		if err != nil {
			return LoadAvg{}, fmt.Errorf("cablebench: /proc/loadavg: %w", err)
		}
		l[i] = f
	}
	return l, nil
}

// String formats l as uptime does.
func (l LoadAvg) String() string {
	return fmt.Sprintf("%.2f, %.2f, %.2f", l[0], l[1], l[2])
}

// cpuMeter measures the CPU the server (if pid > 0) and cablebench use
// over a phase of a run.
type cpuMeter struct {
	pid    int
	start  time.Time
	self   time.Duration
	server time.Duration
}

func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, start: time.Now(), self: selfCPU()}
	if pid > 0 {
		m.server, _ = readCPU(pid)
	}
	return m
}

// CPUUsage is the CPU used over a phase, in seconds and in percent of
// one core.
type CPUUsage struct {
	Phase         string  `json:"phase"`
	WallS         float64 `json:"wall_s"`
	ServerS       float64 `json:"server_s,omitempty"`
	ServerPercent float64 `json:"server_percent,omitempty"`
	ToolS         float64 `json:"tool_s"`
	ToolPercent   float64 `json:"tool_percent"`
}

func (m cpuMeter) stop(phase string) *CPUUsage {
	wall := time.Since(m.start)
	u := &CPUUsage{Phase: phase, WallS: wall.Seconds()}
	self := selfCPU() - m.self
	u.ToolS = self.Seconds()
	u.ToolPercent = 100 * float64(self) / float64(wall)
	if m.pid > 0 {
		if c, err := readCPU(m.pid); err == nil {
			u.ServerS = (c - m.server).Seconds()
			u.ServerPercent = 100 * float64(c-m.server) / float64(wall)
		}
	}
	return u
}

// row describes u for the table.
func (u *CPUUsage) row() row {
	v := fmt.Sprintf("cablebench %.2fs (%.0f%% of a core)", u.ToolS, u.ToolPercent)
	if u.ServerS > 0 || u.ServerPercent > 0 {
		v = fmt.Sprintf("server %.2fs (%.0f%% of a core), ", u.ServerS, u.ServerPercent) + v
	}
	return row{"CPU while " + u.Phase, v}
}
