package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Limits shared by the payload readers (Marshal, MessagePack, JSON). A
// cookie is at most 4 KB, so these bounds never bite on real data; they
// stop crafted input from using deep recursion or, through Marshal's
// back-references, an exponential amount of output.
const (
	// maxDepth is the deepest nesting of arrays, hashes and objects
	// accepted. Ruby's JSON.parse allows 100 (max_nesting).
	maxDepth = 100
	// maxNodes bounds the number of values in a decoded tree, counting
	// every use of a Marshal back-reference in full.
	maxNodes = 1 << 16
)

var errTooDeep = errors.New("nesting deeper than 100")
var errTooBig = fmt.Errorf("more than %d values", maxNodes)

// DecodeMarshal reads a Ruby Marshal 4.8 stream (the payload of a cookie
// written with cookies_serializer :marshal or :hybrid) into plain Go
// values, without instantiating anything:
//
//   - nil, true/false, Integer (int64, or *big.Int when it does not fit),
//     Float (float64), String and Symbol (string, bytes as stored);
//   - Array ([]any) and Hash (map[string]any; keys rendered with RubyToS,
//     a Hash default is dropped); subclasses of String, Array and Hash
//     such as ActiveSupport::HashWithIndifferentAccess as their base value;
//   - Time and ActiveSupport::TimeWithZone as a string in the form
//     ActiveSupport's JSON encoder uses ("2006-01-02T15:04:05.000Z07:00"),
//     Date as "2006-01-02", BigDecimal as its decimal string;
//   - any other object as map[string]any{"_class": name, ...}: instance
//     variables (without "@") for an Object, members for a Struct,
//     "_data" for a class with custom marshalling; a Regexp as its source
//     string, a Class or Module as its name.
//
// Trailing bytes after the value are ignored, as Ruby's Marshal.load does.
// Nesting is limited to 100 levels and the decoded tree to 65536 values;
// recursive structures are rejected. It never panics.
func DecodeMarshal(b []byte) (any, error) {
	if len(b) < 2 || b[0] != 4 || b[1] != 8 {
		return nil, errors.New("auth: marshal: not a Marshal 4.8 stream")
	}
	r := &marshalReader{b: b, pos: 2}
	v, _, err := r.value(0)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal: %w (at byte %d)", err, r.pos)
	}
	return v, nil
}

// marshalReader follows Ruby's marshal.c r_object: every non-immediate
// value takes the next slot of the object table when Ruby allocates it,
// containers before their children, so "@" back-references resolve to the
// same index.
type marshalReader struct {
	b     []byte
	pos   int
	syms  []string
	objs  []marshalObj
	nodes int
}

type marshalObj struct {
	v       any
	weight  int  // values in v, counting back-references in full
	pending bool // still being read: a reference to it is a cycle
}

var errEOF = errors.New("unexpected end of data")

func (r *marshalReader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errEOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// long reads Ruby's packed integer (marshal.c r_long).
func (r *marshalReader) long() (int64, error) {
	c0, err := r.byte()
	if err != nil {
		return 0, err
	}
	c := int(int8(c0))
	switch {
	case c == 0:
		return 0, nil
	case c > 4:
		return int64(c - 5), nil
	case c < -4:
		return int64(c + 5), nil
	case c > 0:
		var x int64
		for i := 0; i < c; i++ {
			b, err := r.byte()
			if err != nil {
				return 0, err
			}
			x |= int64(b) << (8 * i)
		}
		return x, nil
	default:
		n := -c
		x := int64(-1)
		for i := 0; i < n; i++ {
			b, err := r.byte()
			if err != nil {
				return 0, err
			}
			x &^= int64(0xff) << (8 * i)
			x |= int64(b) << (8 * i)
		}
		return x, nil
	}
}

// length reads a packed integer used as a count of items of at least one
// byte each, and checks it against the bytes left.
func (r *marshalReader) length(per int) (int, error) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(r.b)-r.pos)/int64(per) {
		return 0, fmt.Errorf("bad length %d", n)
	}
	return int(n), nil
}

func (r *marshalReader) bytes() ([]byte, error) {
	n, err := r.length(1)
	if err != nil {
		return nil, err
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

// symbol reads a Symbol or a symbol link, optionally wrapped in "I" for its
// encoding (marshal.c r_symbol, r_symreal).
func (r *marshalReader) symbol() (string, error) {
	c, err := r.byte()
	if err != nil {
		return "", err
	}
	ivar := false
	if c == 'I' {
		ivar = true
		if c, err = r.byte(); err != nil {
			return "", err
		}
	}
	switch c {
	case ':':
		return r.symbolBody(ivar)
	case ';':
		if ivar {
			return "", errors.New("bad symbol")
		}
		i, err := r.long()
		if err != nil {
			return "", err
		}
		if i < 0 || i >= int64(len(r.syms)) {
			return "", fmt.Errorf("bad symbol link %d", i)
		}
		return r.syms[i], nil
	}
	return "", fmt.Errorf("bad symbol type %q", c)
}

// symbolBody reads the bytes of a ":" symbol. Its table slot is taken
// before its encoding ivars are read, which may hold symbols themselves.
func (r *marshalReader) symbolBody(ivar bool) (string, error) {
	b, err := r.bytes()
	if err != nil {
		return "", err
	}
	s := string(b)
	r.syms = append(r.syms, s)
	if ivar {
		if _, err := r.ivars(0); err != nil {
			return "", err
		}
	}
	return s, nil
}

// ivars reads an instance-variable list: a count, then symbol/value pairs.
func (r *marshalReader) ivars(depth int) (map[string]any, error) {
	n, err := r.length(2)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, min(n, 16))
	for i := 0; i < n; i++ {
		k, err := r.symbol()
		if err != nil {
			return nil, err
		}
		v, _, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// reserve takes the next object-table slot for a value still being read.
func (r *marshalReader) reserve() int {
	r.objs = append(r.objs, marshalObj{pending: true})
	return len(r.objs) - 1
}

func (r *marshalReader) fill(i int, v any, weight int) {
	r.objs[i] = marshalObj{v: v, weight: weight}
}

func (r *marshalReader) count(n int) error {
	r.nodes += n
	if r.nodes > maxNodes {
		return errTooBig
	}
	return nil
}

// value reads one object and returns it with its weight (the number of
// values it expands to).
func (r *marshalReader) value(depth int) (any, int, error) {
	if depth > maxDepth {
		return nil, 0, errTooDeep
	}
	if err := r.count(1); err != nil {
		return nil, 0, err
	}
	c, err := r.byte()
	if err != nil {
		return nil, 0, err
	}
	ivar := false
	if c == 'I' {
		ivar = true
		if c, err = r.byte(); err != nil {
			return nil, 0, err
		}
	}
	v, w, consumed, err := r.typed(c, ivar, depth)
	if err != nil {
		return nil, 0, err
	}
	if ivar && !consumed {
		// Instance variables of a String (its encoding) or of anything
		// else: read and drop.
		if _, err := r.ivars(depth); err != nil {
			return nil, 0, err
		}
	}
	return v, w, nil
}

// typed reads the body of an object of type c. consumed reports whether it
// already read the "I" instance variables that follow it.
func (r *marshalReader) typed(c byte, ivar bool, depth int) (v any, weight int, consumed bool, err error) {
	switch c {
	case '0':
		return nil, 1, false, nil
	case 'T':
		return true, 1, false, nil
	case 'F':
		return false, 1, false, nil
	case 'i':
		n, err := r.long()
		return n, 1, false, err
	case ':':
		s, err := r.symbolBody(ivar)
		return s, 1, true, err
	case ';':
		i, err := r.long()
		if err != nil {
			return nil, 0, false, err
		}
		if i < 0 || i >= int64(len(r.syms)) {
			return nil, 0, false, fmt.Errorf("bad symbol link %d", i)
		}
		return r.syms[i], 1, false, nil
	case '@':
		i, err := r.long()
		if err != nil {
			return nil, 0, false, err
		}
		if i < 0 || i >= int64(len(r.objs)) {
			return nil, 0, false, fmt.Errorf("bad object link %d", i)
		}
		o := r.objs[i]
		if o.pending {
			return nil, 0, false, errors.New("recursive structure")
		}
		if err := r.count(o.weight); err != nil {
			return nil, 0, false, err
		}
		return o.v, o.weight, false, nil
	case '"':
		b, err := r.bytes()
		if err != nil {
			return nil, 0, false, err
		}
		s := string(b)
		r.objs = append(r.objs, marshalObj{v: s, weight: 1})
		return s, 1, false, nil
	case 'f':
		b, err := r.bytes()
		if err != nil {
			return nil, 0, false, err
		}
		f, err := parseRubyFloat(b)
		if err != nil {
			return nil, 0, false, err
		}
		r.objs = append(r.objs, marshalObj{v: f, weight: 1})
		return f, 1, false, nil
	case 'l':
		n, err := r.bignum()
		if err != nil {
			return nil, 0, false, err
		}
		r.objs = append(r.objs, marshalObj{v: n, weight: 1})
		return n, 1, false, nil
	case '[':
		n, err := r.length(1)
		if err != nil {
			return nil, 0, false, err
		}
		idx := r.reserve()
		a := make([]any, 0, min(n, 64))
		w := 1
		for i := 0; i < n; i++ {
			e, ew, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, false, err
			}
			a = append(a, e)
			w += ew
		}
		r.fill(idx, a, w)
		return a, w, false, nil
	case '{', '}':
		n, err := r.length(2)
		if err != nil {
			return nil, 0, false, err
		}
		idx := r.reserve()
		m := make(map[string]any, min(n, 64))
		w := 1
		for i := 0; i < n; i++ {
			k, kw, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, false, err
			}
			ks, ok := RubyToS(k)
			if !ok {
				return nil, 0, false, fmt.Errorf("unsupported hash key of type %T", k)
			}
			e, ew, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, false, err
			}
			m[ks] = e
			w += kw + ew
		}
		if c == '}' {
			if _, _, err := r.value(depth + 1); err != nil {
				return nil, 0, false, err
			}
		}
		r.fill(idx, m, w)
		return m, w, false, nil
	case 'C', 'e':
		// A subclass of String/Array/Hash/Regexp, or an object extended
		// with a module: read past the name and return the object itself.
		if _, err := r.symbol(); err != nil {
			return nil, 0, false, err
		}
		v, w, err := r.value(depth + 1)
		return v, w, false, err
	case 'o':
		name, err := r.symbol()
		if err != nil {
			return nil, 0, false, err
		}
		idx := r.reserve()
		n, err := r.length(2)
		if err != nil {
			return nil, 0, false, err
		}
		m := map[string]any{"_class": name}
		w := 1
		for i := 0; i < n; i++ {
			k, err := r.symbol()
			if err != nil {
				return nil, 0, false, err
			}
			e, ew, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, false, err
			}
			m[strings.TrimPrefix(k, "@")] = e
			w += ew
		}
		r.fill(idx, m, w)
		return m, w, false, nil
	case 'S':
		name, err := r.symbol()
		if err != nil {
			return nil, 0, false, err
		}
		n, err := r.length(2)
		if err != nil {
			return nil, 0, false, err
		}
		idx := r.reserve()
		m := map[string]any{"_class": name}
		w := 1
		for i := 0; i < n; i++ {
			k, err := r.symbol()
			if err != nil {
				return nil, 0, false, err
			}
			e, ew, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, false, err
			}
			m[k] = e
			w += ew
		}
		r.fill(idx, m, w)
		return m, w, false, nil
	case 'u':
		// _dump/_load: the data string, then (for "I") the string's
		// instance variables, then the object's table slot.
		name, err := r.symbol()
		if err != nil {
			return nil, 0, false, err
		}
		data, err := r.bytes()
		if err != nil {
			return nil, 0, false, err
		}
		var iv map[string]any
		if ivar {
			if iv, err = r.ivars(depth); err != nil {
				return nil, 0, false, err
			}
		}
		v, err := userDefined(name, data, iv)
		if err != nil {
			return nil, 0, false, err
		}
		r.objs = append(r.objs, marshalObj{v: v, weight: 1})
		return v, 1, true, nil
	case 'U', 'd':
		// marshal_dump/marshal_load (and the obsolete _dump_data): the
		// object's slot first, then its data object.
		name, err := r.symbol()
		if err != nil {
			return nil, 0, false, err
		}
		idx := r.reserve()
		data, dw, err := r.value(depth + 1)
		if err != nil {
			return nil, 0, false, err
		}
		v := userMarshal(name, data)
		r.fill(idx, v, dw+1)
		return v, dw + 1, false, nil
	case '/':
		idx := r.reserve()
		src, err := r.bytes()
		if err != nil {
			return nil, 0, false, err
		}
		if _, err := r.byte(); err != nil { // options
			return nil, 0, false, err
		}
		if ivar {
			if _, err := r.ivars(depth); err != nil {
				return nil, 0, false, err
			}
		}
		s := string(src)
		r.fill(idx, s, 1)
		return s, 1, true, nil
	case 'c', 'm', 'M':
		b, err := r.bytes()
		if err != nil {
			return nil, 0, false, err
		}
		s := string(b)
		r.objs = append(r.objs, marshalObj{v: s, weight: 1})
		return s, 1, false, nil
	}
	return nil, 0, false, fmt.Errorf("unsupported type byte %q", c)
}
