package webauthn

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// This file reads the bodies of the sign-in routes, /login/begin and
// /login/finish, without encoding/json's reflection where that gives the
// same result: a body that is one object whose members are among the
// route's, named in printable ASCII (as encoding/json matches such names,
// without regard to case), whose string members are strings without
// escapes (or null). Anything else goes to decodeJSON, which gives what
// it always gave, errors included.

// readBodyHint is the buffer a body starts in when the request does not
// say its length.
const readBodyHint = 512

// readAll is io.ReadAll starting with a buffer of hint bytes (the
// request's Content-Length, when it says one), so that a body is read
// without growing the buffer.
func readAll(r io.Reader, hint int64) ([]byte, error) {
	if hint <= 0 || hint > 1<<20 {
		hint = readBodyHint
	}
	b := make([]byte, 0, hint+1) // +1: the read that finds EOF
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// loginBeginBody is the body of /login/begin.
type loginBeginBody struct {
	Name string `json:"name"`
}

// decode decodes b as decodeJSON would, without reflection when the
// body is plain.
func (v *loginBeginBody) decode(b []byte) error {
	var raw [1][]byte
	if fastObject(b, []string{"name"}, raw[:]) {
		if name, ok := plainString(raw[0]); ok {
			v.Name = name
			return nil
		}
	}
	return decodeJSON(b, v)
}

// loginFinishBody is the body of /login/finish.
type loginFinishBody struct {
	ChallengeID string          `json:"challengeId"`
	Credential  json.RawMessage `json:"credential"`
}

// decode decodes b as decodeJSON would, without reflection when the
// body is plain: the credential is kept as its bytes, which FinishLogin
// parses.
func (v *loginFinishBody) decode(b []byte) error {
	var raw [2][]byte
	if fastObject(b, []string{"challengeid", "credential"}, raw[:]) {
		if id, ok := plainString(raw[0]); ok {
			v.ChallengeID = id
			if raw[1] != nil {
				v.Credential = bytes.Clone(raw[1])
			}
			return nil
		}
	}
	return decodeJSON(b, v)
}

// fastObject reports whether b is one JSON object, with only white space
// around it, each of whose members is named, in printable ASCII without
// escapes, as one of names (lower case; compared without regard to case)
// and none twice; if so, vals[i] is the value of the member named
// names[i] (its bytes, without the white space around them), or nil if
// there is none. It reports false for anything else, including invalid
// JSON, without deciding what that is.
func fastObject(b []byte, names []string, vals [][]byte) bool {
	clear(vals)
	if !json.Valid(b) {
		return false
	}
	s := memberScan{jsonScan: jsonScan{b: b}}
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return s.end()
	}
	for {
		if !s.next('"') {
			return false
		}
		s.i--
		name, plain, ok := s.str()
		if !ok || !plain {
			return false
		}
		k := -1
		for i, n := range names {
			if asciiEqualFold(name, []byte(n)) {
				k = i
				break
			}
		}
		if k < 0 || vals[k] != nil || !s.next(':') {
			return false
		}
		s.ws()
		start := s.i
		if !s.skip() {
			return false
		}
		vals[k] = b[start:s.i]
		if s.next('}') {
			return s.end()
		}
		if !s.next(',') {
			return false
		}
	}
}

// skip moves past one value of valid JSON, at s.i.
func (s *memberScan) skip() bool {
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			if _, _, ok := s.str(); !ok {
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing object
			}
			if depth--; depth == 0 {
				s.i++
				return true
			}
		case ',':
			if depth == 0 {
				return true
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return true
			}
		}
		s.i++
	}
	return depth == 0
}

// plainString returns the value of raw, a JSON string in valid UTF-8
// without escapes or null (which encoding/json decodes into a string as
// leaving it empty), or ok false for anything else. Such a string's value
// is its bytes (encoding/json would replace invalid UTF-8).
func plainString(raw []byte) (string, bool) {
	switch {
	case raw == nil || string(raw) == "null":
		return "", true
	case len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw):
		return string(raw[1 : len(raw)-1]), true
	}
	return "", false
}
