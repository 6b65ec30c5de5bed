package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
)

// messagePackSignature starts every ActiveSupport::MessagePack payload: the
// msgpack encoding of the integer 128
// (activesupport/lib/active_support/message_pack/serializer.rb, SIGNATURE).
var messagePackSignature = []byte{0xcc, 0x80}

// DecodeMessagePack reads an ActiveSupport::MessagePack payload (cookies
// written with cookies_serializer :message_pack, Rails 7.1+): the
// signature 0xCC 0x80, then exactly one msgpack value. Values come out as
// from DecodeMarshal: nil, bool, int64 or *big.Int, float64, string (str
// and bin), []any and map[string]any. The ActiveSupport extension types
// (activesupport/lib/active_support/message_pack/extensions.rb) are read as
// Symbol, Integer, BigDecimal, Pathname, URI, Regexp, IPAddr,
// ActiveSupport::TimeZone and SafeBuffer: string; Rational: "n/d";
// Time, TimeWithZone and DateTime: a time string (TimeWithZone in UTC);
// Date: "YYYY-MM-DD"; Duration: its value in seconds; Set: []any;
// HashWithIndifferentAccess: map[string]any; Complex and Range:
// map[string]any with "_class". Other extension types, including 127 (an
// arbitrary object, refused by Rails' default factory), are errors.
// Nesting is limited to 100 levels and the tree to 65536 values. It never
// panics.
func DecodeMessagePack(b []byte) (any, error) {
	if len(b) < 2 || b[0] != messagePackSignature[0] || b[1] != messagePackSignature[1] {
		return nil, errors.New("auth: msgpack: missing ActiveSupport::MessagePack signature")
	}
	var nodes int
	r := &msgpackReader{b: b, pos: 2, nodes: &nodes}
	v, err := r.value(0)
	if err != nil {
		return nil, fmt.Errorf("auth: msgpack: %w (at byte %d)", err, r.pos)
	}
	if r.pos != len(b) {
		// MessagePack::Unpacker#full_unpack refuses extra bytes.
		return nil, fmt.Errorf("auth: msgpack: %d extra bytes after the value", len(b)-r.pos)
	}
	return v, nil
}

type msgpackReader struct {
	b     []byte
	pos   int
	nodes *int // shared with the readers of nested extension data
}

func (r *msgpackReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.pos {
		return nil, errEOF
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

func (r *msgpackReader) uint(n int) (uint64, error) {
	b, err := r.take(n)
	if err != nil {
		return 0, err
	}
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x, nil
}

// count checks a length read from the input against the bytes left (each
// item takes at least per bytes).
func (r *msgpackReader) count(n uint64, per int) (int, error) {
	if n > uint64(len(r.b)-r.pos)/uint64(per) {
		return 0, fmt.Errorf("bad length %d", n)
	}
	return int(n), nil
}

func (r *msgpackReader) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	*r.nodes++
	if *r.nodes > maxNodes {
		return nil, errTooBig
	}
	cb, err := r.take(1)
	if err != nil {
		return nil, err
	}
	c := cb[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0x80 && c <= 0x8f:
		return r.mapN(uint64(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return r.arrayN(uint64(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return r.str(uint64(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb: // bin 8/16/32, str 8/16/32
		n, err := r.uint(lenSize(c))
		if err != nil {
			return nil, err
		}
		return r.str(n)
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32
		n, err := r.uint(lenSize(c))
		if err != nil {
			return nil, err
		}
		return r.ext(n, depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16
		return r.ext(1<<(c-0xd4), depth)
	case 0xca:
		u, err := r.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := r.uint(8)
		return math.Float64frombits(u), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := r.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		u, err := r.uint(n)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*n
		return int64(u<<shift) >> shift, nil
	case 0xdc, 0xdd:
		n, err := r.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return r.arrayN(n, depth)
	case 0xde, 0xdf:
		n, err := r.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return r.mapN(n, depth)
	}
	return nil, fmt.Errorf("invalid type byte 0x%02x", c)
}

// lenSize is the size of the length field of a bin, str or ext type byte.
func lenSize(c byte) int {
	switch c {
	case 0xc4, 0xc7, 0xd9:
		return 1
	case 0xc5, 0xc8, 0xda:
		return 2
	}
	return 4
}

func (r *msgpackReader) str(n uint64) (any, error) {
	l, err := r.count(n, 1)
	if err != nil {
		return nil, err
	}
	b, err := r.take(l)
	return string(b), err
}

func (r *msgpackReader) arrayN(n uint64, depth int) (any, error) {
	l, err := r.count(n, 1)
	if err != nil {
		return nil, err
	}
	a := make([]any, 0, min(l, 64))
	for i := 0; i < l; i++ {
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
	return a, nil
}

func (r *msgpackReader) mapN(n uint64, depth int) (any, error) {
	l, err := r.count(n, 2)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, min(l, 64))
	for i := 0; i < l; i++ {
		k, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		ks, ok := RubyToS(k)
		if !ok {
			return nil, fmt.Errorf("unsupported map key of type %T", k)
		}
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[ks] = v
	}
	return m, nil
}

// ext reads an extension value of n data bytes. The "recursive" types of
// ActiveSupport hold further msgpack values in their data.
func (r *msgpackReader) ext(n uint64, depth int) (any, error) {
	tb, err := r.take(1)
	if err != nil {
		return nil, err
	}
	typ := int8(tb[0])
	l, err := r.count(n, 1)
	if err != nil {
		return nil, err
	}
	data, err := r.take(l)
	if err != nil {
		return nil, err
	}
	sub := &msgpackReader{b: data, nodes: r.nodes}
	switch typ {
	case 0, 9, 13, 15, 16: // Symbol, TimeZone, URI, Pathname, Regexp: the string itself
		return string(data), nil
	case 1: // Integer too large for 64 bits (msgpack-ruby lib/msgpack/bigint.rb)
		return bigintExt(data)
	case 2: // BigDecimal#_dump: "<precision>:<value>"
		return userDefined("BigDecimal", data, nil)
	case 3: // Rational: numerator, and a denominator unless it is zero
		return sub.rational(depth)
	case 4: // Complex
		re, err := sub.value(depth + 1)
		if err != nil {
			return nil, err
		}
		im, err := sub.value(depth + 1)
		if err != nil {
			return nil, err
		}
		return map[string]any{"_class": "Complex", "real": re, "imaginary": im}, nil
	case 5: // DateTime: jd, hour, min, sec, sec_fraction, offset (a fraction of a day)
		return sub.dateTime(depth)
	case 6: // Date: jd
		jd, err := sub.int(depth)
		if err != nil {
			return nil, err
		}
		return formatJD(jd), nil
	case 7, 8: // Time, TimeWithZone: tv_sec, tv_nsec, utc_offset (+ zone name)
		sec, err := sub.int(depth)
		if err != nil {
			return nil, err
		}
		nsec, err := sub.int(depth)
		if err != nil {
			return nil, err
		}
		off, err := sub.int(depth)
		if err != nil {
			return nil, err
		}
		if nsec < 0 || nsec >= 1e9 || off <= -86400 || off >= 86400 || sec < -1e13 || sec > 1e13 {
			return nil, errors.New("bad Time")
		}
		return formatTime(time.Unix(sec, nsec).In(time.FixedZone("", int(off)))), nil
	case 10: // Duration: value, parts
		v, err := sub.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, err := sub.value(depth + 1); err != nil {
			return nil, err
		}
		return v, nil
	case 11: // Range: begin, end, exclude_end?
		var a [3]any
		for i := range a {
			if a[i], err = sub.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return map[string]any{"_class": "Range", "begin": a[0], "end": a[1], "exclude_end": a[2]}, nil
	case 12, 14, 17, 18: // Set (an Array), IPAddr (a String), HashWithIndifferentAccess, SafeBuffer
		return sub.value(depth + 1)
	}
	return nil, fmt.Errorf("unsupported extension type %d", typ)
}

func (r *msgpackReader) int(depth int) (int64, error) {
	v, err := r.value(depth + 1)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("want an integer, got %T", v)
	}
	return n, nil
}

// rational reads MessagePack::Extensions' write_rational form.
func (r *msgpackReader) rational(depth int) (any, error) {
	num, den, err := r.rationalParts(depth)
	if err != nil {
		return nil, err
	}
	return num.String() + "/" + den.String(), nil
}

func (r *msgpackReader) rationalParts(depth int) (num, den *big.Int, err error) {
	n, err := r.value(depth + 1)
	if err != nil {
		return nil, nil, err
	}
	num, ok := toBig(n)
	if !ok {
		return nil, nil, errors.New("bad Rational")
	}
	if num.Sign() == 0 {
		return num, big.NewInt(1), nil
	}
	d, err := r.value(depth + 1)
	if err != nil {
		return nil, nil, err
	}
	den, ok = toBig(d)
	if !ok || den.Sign() == 0 {
		return nil, nil, errors.New("bad Rational")
	}
	return num, den, nil
}

func (r *msgpackReader) dateTime(depth int) (any, error) {
	var f [4]int64
	for i := range f {
		n, err := r.int(depth)
		if err != nil {
			return nil, err
		}
		f[i] = n
	}
	fn, fd, err := r.rationalParts(depth)
	if err != nil {
		return nil, err
	}
	on, od, err := r.rationalParts(depth)
	if err != nil {
		return nil, err
	}
	nsec := new(big.Int).Mul(fn, big.NewInt(1e9))
	nsec.Quo(nsec, fd)
	off := new(big.Int).Mul(on, big.NewInt(86400))
	off.Quo(off, od)
	jd, hour, minute, sec := f[0], f[1], f[2], f[3]
	if !nsec.IsInt64() || !off.IsInt64() || jd < -1e9 || jd > 1e9 ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 60 {
		return nil, errors.New("bad DateTime")
	}
	o := off.Int64()
	ns := nsec.Int64()
	if o <= -86400 || o >= 86400 || ns < 0 || ns >= 1e9 {
		return nil, errors.New("bad DateTime")
	}
	// The fields are local time at the offset.
	local := time.Unix((jd-2440588)*86400+hour*3600+minute*60+sec-o, ns)
	return formatTime(local.In(time.FixedZone("", int(o)))), nil
}

func toBig(v any) (*big.Int, bool) {
	switch n := v.(type) {
	case int64:
		return big.NewInt(n), true
	case *big.Int:
		return new(big.Int).Set(n), true
	}
	return nil, false
}

// bigintExt reads MessagePack::Bigint's format: a sign byte (0 positive),
// then 32-bit big-endian chunks, least significant chunk first.
func bigintExt(data []byte) (any, error) {
	if len(data) < 1 || (len(data)-1)%4 != 0 {
		return nil, errors.New("bad Bigint")
	}
	x := new(big.Int)
	for i := len(data) - 4; i >= 1; i -= 4 {
		x.Lsh(x, 32)
		x.Or(x, new(big.Int).SetUint64(uint64(binary.BigEndian.Uint32(data[i:i+4]))))
	}
	if data[0] != 0 {
		x.Neg(x)
	}
	return normInt(x), nil
}
