package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// RubyToS renders a scalar decoded value as Ruby's to_s would: "42" for
// 42, the string itself, "1.5" and "1.0e+20" for Floats, "true", and ""
// for nil. It reports false for arrays, maps and other types. This is how
// Rails renders a non-model connection identifier, and how hash keys that
// are not strings are named in decoded values.
func RubyToS(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case *big.Int:
		if x == nil {
			return "", false
		}
		return x.String(), true
	case float64:
		return rubyFloatString(x), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// rubyFloatString follows Ruby's Float#to_s (numeric.c flo_to_s): the
// shortest round-trip digits, in positional notation when the decimal
// exponent is in [-4, 16), otherwise as d.ddde+XX.
func rubyFloatString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	decpt := exp + 1 // digits before the decimal point
	switch {
	case decpt > 0 && decpt <= 16:
		if len(digits) <= decpt {
			out = digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		} else {
			out = digits[:decpt] + "." + digits[decpt:]
		}
	case decpt <= 0 && decpt > -4:
		out = "0." + strings.Repeat("0", -decpt) + digits
	default:
		frac := digits[1:]
		if frac == "" {
			frac = "0"
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		out = fmt.Sprintf("%s.%se%s%02d", digits[:1], frac, sign, exp)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// decodeJSON parses a JSON payload as ActiveSupport::JSON.decode does
// (JSON.parse in quirks mode, so a bare 42 or "42" is a valid document;
// nesting is limited to 100 like Ruby's max_nesting): integers become
// int64 or *big.Int, other numbers float64.
func decodeJSON(p []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("json: extra data after the value")
	}
	return convertJSON(v, 0)
}

func convertJSON(v any, depth int) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return jsonNumber(x)
	case []any:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		for i, e := range x {
			c, err := convertJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		for k, e := range x {
			c, err := convertJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	}
	return v, nil
}

func jsonNumber(n json.Number) (any, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if b, ok := new(big.Int).SetString(s, 10); ok {
			return b, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("json: number %s out of range", s)
	}
	return f, nil
}

// assign stores a decoded value in dst: directly for *any, otherwise by a
// JSON round trip, so dst may be any type encoding/json can fill
// (*int64, *string, *struct{...}, *map[string]any, ...).
func assign(val, dst any) error {
	if p, ok := dst.(*any); ok {
		*p = val
		return nil
	}
	b, err := json.Marshal(val)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
