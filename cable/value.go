package cable

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// Value is one JSON value a client sent, in its params or its data, read
// the way Ruby reads what JSON.parse made of it: params[:room].present?,
// "#{params[:room]}" and params[:room].to_i become
// s.Param("room").Present(), .String() and .Int().
//
// The zero Value stands for a missing key: Exists reports false, and it
// reads as Ruby's nil (not present, "" and 0), as params[:missing] is nil
// in Rails. A Value is immutable and safe to use from any goroutine.
type Value struct {
	raw json.RawMessage // nil: missing
}

// Param returns the identifier's key exactly as Rails' params[key] finds
// it: the key must match byte for byte (Rails decodes the identifier with
// ActiveSupport::JSON.decode into a HashWithIndifferentAccess,
// actioncable/lib/action_cable/connection/subscriptions.rb, add), so
// {"Room":1} has no "room", unlike DecodeParams. When a key is repeated,
// the last one counts, as in a Ruby Hash. Param("channel") is the channel
// name. It is safe from any goroutine.
func (s *Subscription) Param(key string) Value {
	return Value{raw: json.RawMessage(s.id)}.Get(key)
}

// Data returns the data of a Perform call as a Value, so that Rails'
// data["body"] is Data(data).Get("body"). Like the hash Rails passes to an
// action (actioncable/lib/action_cable/channel/base.rb, perform_action),
// it includes the "action" key. Data(nil) is the missing Value.
func Data(data json.RawMessage) Value {
	if data == nil {
		return Value{}
	}
	return Value{raw: bytes.TrimSpace(data)}
}

// Get returns the member key of an object, matched exactly (the last one
// when repeated, as in a Ruby Hash). It returns the missing Value when v
// is not an object or has no such key; Ruby's String#[] and Integer#[]
// would do something else entirely, and nil[] raises.
func (v Value) Get(key string) Value {
	if v.kind() != '{' {
		return Value{}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v.raw, &m); err != nil {
		return Value{}
	}
	raw, ok := m[key]
	if !ok {
		return Value{}
	}
	return Value{raw: raw}
}

// Exists reports whether the key was there at all, like Hash#key?: a
// JSON null exists, a missing key does not.
func (v Value) Exists() bool { return v.raw != nil }

// Raw returns the JSON text of the value as the client sent it, or nil
// for the missing Value.
func (v Value) Raw() json.RawMessage { return v.raw }

// kind returns the first byte of the JSON text ('n', 't', 'f', '"', '[',
// '{', or '-'/a digit for a number), or 0 for the missing Value.
func (v Value) kind() byte {
	if len(v.raw) == 0 {
		return 0
	}
	return v.raw[0]
}

// Present is ActiveSupport's present?, the negation of blank?
// (activesupport/lib/active_support/core_ext/object/blank.rb): nil, false,
// a string that is empty or only whitespace ([[:space:]], Unicode's
// White_Space), an empty array and an empty object are blank; true, every
// number and everything else are present.
func (v Value) Present() bool {
	switch v.kind() {
	case 0, 'n', 'f':
		return false
	case '"':
		var s string
		if json.Unmarshal(v.raw, &s) != nil {
			return false
		}
		return !isBlank(s)
	case '[':
		var a []json.RawMessage
		return json.Unmarshal(v.raw, &a) == nil && len(a) > 0
	case '{':
		var m map[string]json.RawMessage
		return json.Unmarshal(v.raw, &m) == nil && len(m) > 0
	}
	return true // true and numbers
}

// String is Ruby's to_s, what "#{value}" interpolates: a string as
// itself, nil as "", true and false as "true" and "false", an integer in
// decimal however large, and a float as Ruby prints it ("1.0", "0.0001",
// "1.0e-05", "1.0e+16", "Infinity" for a literal too large for a double).
//
// Arrays and objects are the exception: Ruby gives their inspect
// (["a", 1] and {"a"=>1}, a debugging format whose hash syntax changed in
// Ruby 3.4), and String gives their compact JSON text instead.
func (v Value) String() string {
	switch v.kind() {
	case 0, 'n':
		return ""
	case 't':
		return "true"
	case 'f':
		return "false"
	case '"':
		var s string
		if json.Unmarshal(v.raw, &s) != nil {
			return ""
		}
		return s
	case '[', '{':
		var b bytes.Buffer
		if json.Compact(&b, v.raw) != nil {
			return string(v.raw)
		}
		return b.String()
	}
	return rubyNumber(string(v.raw))
}

// Int is Ruby's to_i: a string's leading decimal integer ("12abc" is 12,
// "abc" 0, " -3" -3, "1_000" 1000, "0d12" 12, as String#to_i reads it), a
// float truncated toward zero, an integer as itself, nil as 0. Ruby's
// integers have no limit; Int saturates at the bounds of int64.
//
// Where Ruby raises, Int returns 0: true, false, arrays and objects have
// no to_i (NoMethodError), and Infinity.to_i raises FloatDomainError
// (Int gives the bound of the infinity's sign instead).
func (v Value) Int() int64 {
	switch v.kind() {
	case 0, 'n', 't', 'f', '[', '{':
		return 0
	case '"':
		var s string
		if json.Unmarshal(v.raw, &s) != nil {
			return 0
		}
		return rubyStringToI(s)
	}
	lit := string(v.raw)
	if isJSONInteger(lit) {
		n, ok := new(big.Int).SetString(lit, 10)
		if !ok {
			return 0
		}
		return clampInt(n)
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0
	}
	switch {
	case math.IsInf(f, 1) || f >= math.MaxInt64:
		return math.MaxInt64
	case math.IsInf(f, -1) || f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f) // truncates toward zero, as Float#to_i
}

// isJSONInteger reports whether a JSON number literal has no fraction and
// no exponent, so that Ruby's JSON parser makes an Integer of it.
func isJSONInteger(lit string) bool { return !strings.ContainsAny(lit, ".eE") }

func clampInt(n *big.Int) int64 {
	switch {
	case n.IsInt64():
		return n.Int64()
	case n.Sign() > 0:
		return math.MaxInt64
	}
	return math.MinInt64
}

// isBlank is String#blank?: empty or only [[:space:]], which for a UTF-8
// string is Unicode's White_Space, the set unicode.IsSpace reports.
func isBlank(s string) bool { return strings.TrimFunc(s, unicode.IsSpace) == "" }

// rubyNumber renders a JSON number literal as Ruby's to_s renders the
// Integer or Float that JSON.parse makes of it.
func rubyNumber(lit string) string {
	if isJSONInteger(lit) {
		if lit == "-0" {
			return "0" // an Integer has no negative zero
		}
		return lit // already canonical: JSON forbids leading zeros and "+"
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !math.IsInf(f, 0) {
		return lit
	}
	return rubyFloat(f)
}

// rubyFloat follows Ruby's Float#to_s (numeric.c, flo_to_s): the shortest
// digits that round-trip, in fixed notation when the decimal exponent is
// small and in scientific notation ("1.0e+16", "1.0e-05") otherwise. The
// thresholds were checked against Ruby in the differential test.
func rubyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	sign := ""
	if math.Signbit(f) {
		sign = "-"
		f = -f
	}
	// e has the form d.ddde±XX: digits d ddd, value 0.dddd × 10^decpt.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1
	var b strings.Builder
	b.WriteString(sign)
	switch {
	case decpt > 0 && decpt < len(digits) && decpt <= 16:
		b.WriteString(digits[:decpt])
		b.WriteByte('.')
		b.WriteString(digits[decpt:])
	case decpt > 0 && decpt <= 15:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", decpt-len(digits)))
		b.WriteString(".0")
	case decpt <= 0 && decpt > -4:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -decpt))
		b.WriteString(digits)
	default:
		b.WriteString(digits[:1])
		b.WriteByte('.')
		if len(digits) > 1 {
			b.WriteString(digits[1:])
		} else {
			b.WriteByte('0')
		}
		b.WriteByte('e')
		if decpt-1 < 0 {
			b.WriteByte('-')
		} else {
			b.WriteByte('+')
		}
		n := decpt - 1
		if n < 0 {
			n = -n
		}
		if n < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// rubyStringToI follows Ruby's String#to_i in base 10 (bignum.c,
// rb_int_parse_cstr without badcheck): leading ASCII whitespace, one
// sign, an optional "0d" prefix, then digits with single underscores
// between them; it stops at the first other byte.
func rubyStringToI(s string) int64 {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'd' || s[i+1] == 'D') {
		i += 2
	}
	n := new(big.Int)
	ten := big.NewInt(10)
	prevDigit := false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			if !prevDigit || i+1 >= len(s) || s[i+1] < '0' || s[i+1] > '9' {
				break
			}
			prevDigit = false
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		n.Mul(n, ten)
		n.Add(n, big.NewInt(int64(c-'0')))
		prevDigit = true
	}
	if neg {
		n.Neg(n)
	}
	return clampInt(n)
}
