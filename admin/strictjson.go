package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkKeys walks data against the type of v and rejects what
// encoding/json would quietly accept: a key that matches a field only when
// case is ignored ("ROLE" for "role"), and a key given twice in one object
// (where the last one would win). Both let two readers of one body — a
// proxy and Veil — disagree about what it says, which matters for fields
// like a token's role.
func checkKeys(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] == 'n' { // null
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if data[0] != '{' || t.PkgPath() == "time" {
			return nil // a type mismatch: json.Decode reports it
		}
		fields := jsonFields(t)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.Token() // {
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil // a syntax error: json.Decode reports it
			}
			key, _ := tok.(string)
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil
			}
			if seen[key] {
				return badRequest("invalid_json", "field %q is given twice", path+key)
			}
			seen[key] = true
			ft, ok := fields[key]
			if !ok {
				return badRequest("unknown_field", "unknown field %q", path+key)
			}
			if err := checkKeys(raw, ft, path+key+"."); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if data[0] != '[' {
			return nil
		}
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := checkKeys(it, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the exact JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
