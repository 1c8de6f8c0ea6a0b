package fido

import (
	"encoding/json"
	"unicode/utf8"
)

// A fast path for the options JSON of every ceremony. encoding/json
// validates the whole input on each Unmarshal and the options parser calls
// it once per object, array and string, so a document was scanned several
// times over. These functions scan each value once and split objects and
// arrays into members as json.Unmarshal into a jsonObject or a
// []json.RawMessage does; they are sound, not complete: false means "not
// handled here" (an escape in a key, a duplicate key, input that is not
// JSON, nesting past maxQuickDepth), and the caller then runs
// json.Unmarshal, which decides and fails as before.

// maxQuickDepth bounds the nesting quickValue follows; deeper input goes
// to encoding/json.
const maxQuickDepth = 64

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

// quickValue checks one JSON value at the start of b (no leading space)
// and returns what follows it.
func quickValue(b []byte, depth int) ([]byte, bool) {
	if len(b) == 0 || depth > maxQuickDepth {
		return nil, false
	}
	switch c := b[0]; {
	case c == '"':
		return quickString(b)
	case c == '{':
		rest, _, ok := quickMembers(b, depth, nil)
		return rest, ok
	case c == '[':
		rest, _, ok := quickElements(b, depth, nil)
		return rest, ok
	case c == 't':
		return literal(b, "true")
	case c == 'f':
		return literal(b, "false")
	case c == 'n':
		return literal(b, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return quickNumber(b)
	}
	return nil, false
}

func literal(b []byte, lit string) ([]byte, bool) {
	if len(b) < len(lit) || string(b[:len(lit)]) != lit {
		return nil, false
	}
	return b[len(lit):], true
}

// quickString checks a JSON string (RFC 8259 §7) at the start of b. Bytes
// of 0x80 and above pass as encoding/json lets them, valid UTF-8 or not.
func quickString(b []byte) ([]byte, bool) {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[i+1:], true
		case c < 0x20:
			return nil, false
		case c == '\\':
			i++
			if i >= len(b) {
				return nil, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return nil, false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false
					}
				}
				i += 4
			default:
				return nil, false
			}
		}
	}
	return nil, false
}

// quickNumber checks a JSON number (RFC 8259 §6) at the start of b.
func quickNumber(b []byte) ([]byte, bool) {
	i := 0
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	return b[i:], true
}

// quickMembers checks an object at the start of b, recording each member
// in o when o is not nil.
func quickMembers(b []byte, depth int, o jsonObject) ([]byte, jsonObject, bool) {
	b = skipSpace(b[1:])
	if len(b) > 0 && b[0] == '}' {
		return b[1:], o, true
	}
	for {
		if len(b) == 0 || b[0] != '"' {
			return nil, nil, false
		}
		after, ok := quickString(b)
		if !ok {
			return nil, nil, false
		}
		key := b[1 : len(b)-len(after)-1]
		b = skipSpace(after)
		if len(b) == 0 || b[0] != ':' {
			return nil, nil, false
		}
		b = skipSpace(b[1:])
		after, ok = quickValue(b, depth+1)
		if !ok {
			return nil, nil, false
		}
		if o != nil {
			// A key as json.Unmarshal would give it only without
			// escapes and in valid UTF-8; a repeated key, which it
			// resolves by keeping the last, is left to it too.
			if !plainKey(key) {
				return nil, nil, false
			}
			if _, dup := o[string(key)]; dup {
				return nil, nil, false
			}
			o[string(key)] = json.RawMessage(b[:len(b)-len(after)])
		}
		b = skipSpace(after)
		if len(b) == 0 {
			return nil, nil, false
		}
		switch b[0] {
		case ',':
			b = skipSpace(b[1:])
		case '}':
			return b[1:], o, true
		default:
			return nil, nil, false
		}
	}
}

func plainKey(k []byte) bool {
	for _, c := range k {
		if c == '\\' {
			return false
		}
	}
	return utf8.Valid(k)
}

// quickElements checks an array at the start of b, appending each element
// to *a when a is not nil.
func quickElements(b []byte, depth int, a *[]json.RawMessage) ([]byte, []json.RawMessage, bool) {
	b = skipSpace(b[1:])
	if len(b) > 0 && b[0] == ']' {
		if a != nil && *a == nil {
			*a = []json.RawMessage{}
		}
		return b[1:], nil, true
	}
	for {
		after, ok := quickValue(b, depth+1)
		if !ok {
			return nil, nil, false
		}
		if a != nil {
			*a = append(*a, json.RawMessage(b[:len(b)-len(after)]))
		}
		b = skipSpace(after)
		if len(b) == 0 {
			return nil, nil, false
		}
		switch b[0] {
		case ',':
			b = skipSpace(b[1:])
		case ']':
			return b[1:], nil, true
		default:
			return nil, nil, false
		}
	}
}

// quickObject is json.Unmarshal(data, &o) for a jsonObject o, when it can
// tell; ok false sends the caller to json.Unmarshal. The members alias
// data.
func quickObject(data []byte) (o jsonObject, ok bool) {
	b := skipSpace(data)
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	rest, o, ok := quickMembers(b, 0, make(jsonObject))
	if !ok || len(skipSpace(rest)) != 0 {
		return nil, false
	}
	return o, true
}

// quickArray is json.Unmarshal(data, &a) for a []json.RawMessage a, when
// it can tell, as quickObject.
func quickArray(data []byte) (a []json.RawMessage, ok bool) {
	b := skipSpace(data)
	if len(b) == 0 || b[0] != '[' {
		return nil, false
	}
	rest, _, ok := quickElements(b, 0, &a)
	if !ok || len(skipSpace(rest)) != 0 {
		return nil, false
	}
	return a, true
}

// quickStr is json.Unmarshal(data, &s) for a string s, for a string with
// no escapes in valid UTF-8, which decodes to its bytes.
func quickStr(data []byte) (string, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return "", false
	}
	in := data[1 : len(data)-1]
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
