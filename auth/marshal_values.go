package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// bignum reads an "l" Integer: a sign byte, a count of 16-bit words, and
// the words, least significant first.
func (r *marshalReader) bignum() (any, error) {
	sign, err := r.byte()
	if err != nil {
		return nil, err
	}
	n, err := r.length(2)
	if err != nil {
		return nil, err
	}
	le := r.b[r.pos : r.pos+2*n]
	r.pos += 2 * n
	be := make([]byte, len(le))
	for i, b := range le {
		be[len(le)-1-i] = b
	}
	x := new(big.Int).SetBytes(be)
	if sign == '-' {
		x.Neg(x)
	}
	return normInt(x), nil
}

// normInt returns x as an int64 when it fits.
func normInt(x *big.Int) any {
	if x.IsInt64() {
		return x.Int64()
	}
	return x
}

// parseRubyFloat reads the text of a Marshal Float: "nan", "inf", "-inf"
// or a decimal, possibly followed by a NUL and mantissa bytes of an old
// format, which are ignored (marshal.c r_object, TYPE_FLOAT).
func parseRubyFloat(b []byte) (float64, error) {
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "nan":
		return math.NaN(), nil
	case "inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad float %q", s)
	}
	return f, nil
}

// userDefined converts the _dump data of the classes a cookie may hold.
func userDefined(class string, data []byte, iv map[string]any) (any, error) {
	switch class {
	case "Time":
		t, err := rubyTime(data, iv)
		if err != nil {
			return nil, err
		}
		return formatTime(t), nil
	case "BigDecimal":
		// "<precision>:<value>", e.g. "18:0.15e1".
		s := string(data)
		if _, v, ok := strings.Cut(s, ":"); ok {
			return v, nil
		}
		return s, nil
	}
	return map[string]any{"_class": class, "_data": string(data)}, nil
}

// userMarshal converts the marshal_dump data of the classes a cookie may
// hold.
func userMarshal(class string, data any) any {
	switch class {
	case "ActiveSupport::TimeWithZone":
		// [utc, time_zone.name, time] (active_support/time_with_zone.rb)
		if a, ok := data.([]any); ok && len(a) == 3 {
			if s, ok := a[2].(string); ok {
				return s
			}
			if s, ok := a[0].(string); ok {
				return s
			}
		}
	case "Date":
		// [nth, jd, df, sf, of, sg] (ext/date/date_core.c d_lite_marshal_dump)
		if a, ok := data.([]any); ok && len(a) == 6 {
			if nth, ok := a[0].(int64); ok && nth == 0 {
				if jd, ok := a[1].(int64); ok {
					return formatJD(jd)
				}
			}
		}
	}
	return map[string]any{"_class": class, "_data": data}
}

// rubyTime decodes Time#_dump (time.c time_mdump): two little-endian
// 32-bit words holding the UTC date and time to the microsecond, and the
// instance variables offset, nano_num, nano_den and submicro.
func rubyTime(data []byte, iv map[string]any) (time.Time, error) {
	if len(data) != 8 {
		return time.Time{}, errors.New("bad Time data")
	}
	p := binary.LittleEndian.Uint32(data[0:4])
	s := binary.LittleEndian.Uint32(data[4:8])
	var t time.Time
	if p&(1<<31) == 0 {
		// Pre-1.9 format: seconds and microseconds.
		t = time.Unix(int64(p), int64(s)*1000).UTC()
	} else {
		year := int(p>>14&0xffff) + 1900
		mon := time.Month(p>>10&0xf) + 1
		mday := int(p >> 5 & 0x1f)
		hour := int(p & 0x1f)
		minute := int(s >> 26 & 0x3f)
		sec := int(s >> 20 & 0x3f)
		usec := int(s & 0xfffff)
		t = time.Date(year, mon, mday, hour, minute, sec, usec*1000, time.UTC)
	}
	if num, ok := iv["nano_num"].(int64); ok {
		if den, ok := iv["nano_den"].(int64); ok && den > 0 && num >= 0 && num/den < 1000 {
			t = t.Add(time.Duration(num / den))
		}
	}
	if off, ok := iv["offset"].(int64); ok && off > -86400 && off < 86400 {
		t = t.In(time.FixedZone("", int(off)))
	}
	return t, nil
}

// timeLayout is what ActiveSupport's JSON encoder writes for a Time:
// xmlschema with 3 fraction digits (active_support/core_ext/object/json.rb).
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.Format(timeLayout) }

// formatJD renders a chronological Julian day number as a proleptic
// Gregorian "YYYY-MM-DD", which is Date#as_json.
func formatJD(jd int64) string {
	// 2440588 is 1970-01-01.
	if jd < -1e9 || jd > 1e9 {
		return strconv.FormatInt(jd, 10)
	}
	t := time.Unix((jd-2440588)*86400, 0).UTC()
	return t.Format("2006-01-02")
}
