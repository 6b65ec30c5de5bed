package cable

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Decode stores the value in the Go value dst points to, as
// json.Unmarshal does, except that object keys match struct fields
// exactly, at every depth, as Ruby's data["body"] and params[:room] do:
// encoding/json alone would fill a field tagged "body" from a key "Body"
// when no key matches exactly. So cable.Data(data).Decode(&d) decodes a
// Perform's data in one call; data keeps its "action" key, as the hash
// Rails passes to an action does, so a field tagged "action" receives it
// and a struct without one ignores it. Types that decode themselves
// (json.Unmarshaler, encoding.TextUnmarshaler) get their JSON unchanged.
// The missing Value decodes as null: dst is left as it is.
func (v Value) Decode(dst any) error {
	if v.raw == nil {
		return nil
	}
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("cable: decode: need a non-nil pointer, not %T", dst)
	}
	raw, err := exactKeys(v.raw, t.Elem())
	if err != nil {
		return fmt.Errorf("cable: decode: %w", err)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("cable: decode: %w", err)
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// exactKeys returns raw without the object members that a struct of type
// t would take only by a case-insensitive match, recursively through
// pointers, slices, arrays and maps; encoding/json prefers an exact
// match, so what is left decodes as an exact-key decoder would.
func exactKeys(raw json.RawMessage, t reflect.Type) (json.RawMessage, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return raw, nil
	}
	kind := Value{raw: raw}.kind()
	switch {
	case t.Kind() == reflect.Struct && kind == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		fields := structFields(t)
		out := make(map[string]json.RawMessage, len(m))
		for k, member := range m {
			ft, ok := fields[k]
			if !ok {
				continue
			}
			member, err := exactKeys(member, ft)
			if err != nil {
				return nil, err
			}
			out[k] = member
		}
		return json.Marshal(out)
	case t.Kind() == reflect.Map && kind == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		for k, member := range m {
			member, err := exactKeys(member, t.Elem())
			if err != nil {
				return nil, err
			}
			m[k] = member
		}
		return json.Marshal(m)
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && kind == '[':
		var a []json.RawMessage
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		for i, e := range a {
			e, err := exactKeys(e, t.Elem())
			if err != nil {
				return nil, err
			}
			a[i] = e
		}
		return json.Marshal(a)
	}
	return raw, nil
}

// structFields returns the JSON names of t's fields as encoding/json
// names them (the tag's name, else the field's), with embedded structs'
// fields promoted, and each field's type; the shallowest name wins.
func structFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	var walk func(t reflect.Type, depth int, seen map[reflect.Type]bool)
	depthOf := make(map[string]int)
	walk = func(t reflect.Type, depth int, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, depth+1, seen)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if d, ok := depthOf[name]; ok && d <= depth {
				continue
			}
			depthOf[name] = depth
			fields[name] = ft
		}
	}
	walk(t, 0, map[reflect.Type]bool{})
	return fields
}
