package ctap

import (
	"bytes"
	"math"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Hand-written decoders for the messages of every sign-in, the
// getAssertion request and response, which check canonical form and types
// in the same single pass that fills the struct. Like quickCanonical they
// are sound, not complete: they accept only what decodeMessage accepts and
// decode it to the same value, and anything else (a key or a value of an
// unexpected kind, an encoding they do not know) makes them report false,
// whereupon the caller runs decodeMessage on the input, which decides and
// names the error. FuzzDecodeDifferential holds them to decodeMessageSlow.

// reader walks CBOR for the hand-written decoders. A failure clears ok and
// empties b, so that every later read fails at once.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) fail() {
	r.ok, r.b = false, nil
}

// head reads a minimal head of the given major type.
func (r *reader) head(major byte) uint64 {
	m, arg, rest, ok := head(r.b)
	if !ok || m != major {
		r.fail()
		return 0
	}
	r.b = rest
	return arg
}

func (r *reader) uint() uint64 { return r.head(0) }

// int reads an integer that fits an int64, as the decoder fills an int.
func (r *reader) int() int64 {
	if len(r.b) > 0 && r.b[0]>>5 == 1 {
		n := r.head(1)
		if n > math.MaxInt64 {
			r.fail()
		}
		return -1 - int64(n)
	}
	n := r.uint()
	if n > math.MaxInt64 {
		r.fail()
	}
	return int64(n)
}

// take returns the next n bytes.
func (r *reader) take(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// bytes reads a byte string into a new slice, never nil, as the decoder
// does.
func (r *reader) bytes() []byte {
	s := r.take(r.head(2))
	if !r.ok {
		return nil
	}
	return append(make([]byte, 0, len(s)), s...)
}

func (r *reader) text() string {
	s := r.take(r.head(3))
	if !utf8.Valid(s) {
		r.fail()
	}
	return string(s)
}

func (r *reader) boolean() bool {
	if len(r.b) == 0 || (r.b[0] != 0xf4 && r.b[0] != 0xf5) {
		r.fail()
		return false
	}
	v := r.b[0] == 0xf5
	r.b = r.b[1:]
	return v
}

// container reads the head of an array (major 4) or map (5) depth
// containers deep, within the decoder's limits.
func (r *reader) container(major byte, depth int) uint64 {
	n := r.head(major)
	if depth+1 > maxNesting || (major == 4 && n > maxArrayLen) || (major == 5 && n > maxMapPairs) {
		r.fail()
	}
	return n
}

// key reads a map key of the given major type (0 also takes negative
// integers, which match no field), which must sort after *prev, and
// returns its encoding.
func (r *reader) key(major byte, prev *[]byte) []byte {
	if len(r.b) == 0 {
		r.fail()
		return nil
	}
	m := r.b[0] >> 5
	if m != major && !(major == 0 && m == 1) {
		r.fail() // left to the decoder, whose matching rules decide
		return nil
	}
	after, ok := scanItem(r.b, 0)
	if !ok {
		r.fail()
		return nil
	}
	k := r.b[:len(r.b)-len(after)]
	if *prev != nil && bytes.Compare(*prev, k) >= 0 {
		r.fail()
		return nil
	}
	*prev, r.b = k, after
	return k
}

// intKey reads an integer map key and returns its value, or -1 for a
// negative one.
func (r *reader) intKey(prev *[]byte) int64 {
	k := r.key(0, prev)
	if !r.ok || k[0]>>5 == 1 {
		return -1
	}
	_, arg, _, _ := head(k)
	if arg > math.MaxInt64 {
		r.fail() // the decoder refuses a key that overflows an int64
		return -1
	}
	return int64(arg)
}

// textKey reads a text map key and returns its bytes; a switch on
// string(k) then compares without allocating.
func (r *reader) textKey(prev *[]byte) []byte {
	k := r.key(3, prev)
	if !r.ok {
		return nil
	}
	_, n, rest, _ := head(k)
	return rest[:n]
}

// skip passes over the value of a key that matches no field.
func (r *reader) skip(depth int) {
	rest, ok := scanItem(r.b, depth)
	if !ok || hasNull(r.b[:len(r.b)-len(rest)]) {
		r.fail()
		return
	}
	r.b = rest
}

// raw reads any item as a RawMessage of its own bytes.
func (r *reader) raw(depth int) cbor.RawMessage {
	start := r.b
	r.skip(depth)
	if !r.ok {
		return nil
	}
	return append(cbor.RawMessage{}, start[:len(start)-len(r.b)]...)
}

// hasNull reports whether a scanned item may hold null, which the message
// decoder refuses anywhere. It walks the item's heads, so that a 0xf6
// byte inside a string, as in most signatures and certificates of an
// attestation statement, does not send the message to the decoder; an
// item it cannot walk counts as holding null, which merely does.
func hasNull(item []byte) bool {
	_, found, ok := walkNull(item)
	return found || !ok
}

// walkNull walks one item at the start of b, reporting what follows it and
// whether it is or holds null.
func walkNull(b []byte) (rest []byte, found, ok bool) {
	if len(b) > 0 && b[0]>>5 == 7 {
		return b[1:], b[0] == 0xf6, true // scanItem let only false, true and null by
	}
	major, arg, rest, ok := head(b)
	if !ok {
		return nil, false, false
	}
	switch major {
	case 2, 3:
		if arg > uint64(len(rest)) {
			return nil, false, false
		}
		return rest[arg:], false, true
	case 4, 5:
		if arg > uint64(len(rest)) { // each item takes a byte at least
			return nil, false, false
		}
		n := arg
		if major == 5 {
			n *= 2
		}
		for range n {
			if rest, found, ok = walkNull(rest); found || !ok {
				return rest, found, ok
			}
		}
		return rest, false, true
	case 6:
		return nil, false, false // scanItem refuses tags
	}
	return rest, false, true
}

func (r *reader) rawMap(depth int) map[string]cbor.RawMessage {
	n := r.container(5, depth)
	m := make(map[string]cbor.RawMessage, n)
	var prev []byte
	for range n {
		k := r.textKey(&prev)
		m[string(k)] = r.raw(depth + 1)
		if !r.ok {
			return nil
		}
	}
	return m
}

func (r *reader) boolMap(depth int) map[string]bool {
	n := r.container(5, depth)
	m := make(map[string]bool, n)
	var prev []byte
	for range n {
		k := r.textKey(&prev)
		m[string(k)] = r.boolean()
		if !r.ok {
			return nil
		}
	}
	return m
}

func (r *reader) texts(depth int) []string {
	n := r.container(4, depth)
	if !r.ok {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = r.text()
	}
	return s
}

func (r *reader) descriptor(d *CredentialDescriptor, depth int) {
	n := r.container(5, depth)
	var prev []byte
	for range n {
		switch string(r.textKey(&prev)) {
		case "type":
			d.Type = r.text()
		case "id":
			d.ID = r.bytes()
		case "transports":
			d.Transports = r.texts(depth + 1)
		default:
			r.skip(depth + 1)
		}
		if !r.ok {
			return
		}
	}
}

func (r *reader) descriptors(depth int) []CredentialDescriptor {
	n := r.container(4, depth)
	if !r.ok {
		return nil
	}
	ds := make([]CredentialDescriptor, n)
	for i := range ds {
		r.descriptor(&ds[i], depth+1)
	}
	return ds
}

func (r *reader) user(u *UserEntity, depth int) {
	n := r.container(5, depth)
	var prev []byte
	for range n {
		switch string(r.textKey(&prev)) {
		case "id":
			u.ID = r.bytes()
		case "name":
			u.Name = r.text()
		case "displayName":
			u.DisplayName = r.text()
		case "icon":
			u.Icon = r.text()
		default:
			r.skip(depth + 1)
		}
		if !r.ok {
			return
		}
	}
}

// fastGetAssertionRequest decodes data into the zero value r as
// decodeMessage would, or reports false.
func fastGetAssertionRequest(data []byte, r *GetAssertionRequest) bool {
	rd := reader{b: data, ok: true}
	n := rd.container(5, 0)
	var prev []byte
	for range n {
		switch rd.intKey(&prev) {
		case 1:
			r.RPID = rd.text()
		case 2:
			r.ClientDataHash = rd.bytes()
		case 3:
			r.AllowList = rd.descriptors(1)
		case 4:
			r.Extensions = rd.rawMap(1)
		case 5:
			r.Options = rd.boolMap(1)
		case 6:
			r.PinUvAuthParam = rd.bytes()
		case 7:
			r.PinUvAuthProtocol = rd.uint()
		default:
			rd.skip(1)
		}
		if !rd.ok {
			return false
		}
	}
	return rd.ok && len(rd.b) == 0
}

// fastGetAssertionResponse decodes data into the zero value r as
// decodeMessage would, or reports false.
func fastGetAssertionResponse(data []byte, r *GetAssertionResponse) bool {
	rd := reader{b: data, ok: true}
	n := rd.container(5, 0)
	var prev []byte
	for range n {
		switch rd.intKey(&prev) {
		case 1:
			r.Credential = new(CredentialDescriptor)
			rd.descriptor(r.Credential, 1)
		case 2:
			r.AuthData = rd.bytes()
		case 3:
			r.Signature = rd.bytes()
		case 4:
			r.User = new(UserEntity)
			rd.user(r.User, 1)
		case 5:
			r.NumberOfCredentials = int(rd.int())
		case 6:
			r.UserSelected = rd.boolean()
		case 7:
			r.LargeBlobKey = rd.bytes()
		default:
			rd.skip(1)
		}
		if !rd.ok {
			return false
		}
	}
	return rd.ok && len(rd.b) == 0
}

func (r *reader) rp(e *RPEntity, depth int) {
	n := r.container(5, depth)
	var prev []byte
	for range n {
		switch string(r.textKey(&prev)) {
		case "id":
			e.ID = r.text()
		case "name":
			e.Name = r.text()
		case "icon":
			e.Icon = r.text()
		default:
			r.skip(depth + 1)
		}
		if !r.ok {
			return
		}
	}
}

func (r *reader) params(depth int) []CredentialParam {
	n := r.container(4, depth)
	if !r.ok {
		return nil
	}
	ps := make([]CredentialParam, n)
	for i := range ps {
		m := r.container(5, depth+1)
		var prev []byte
		for range m {
			switch string(r.textKey(&prev)) {
			case "type":
				ps[i].Type = r.text()
			case "alg":
				ps[i].Alg = r.int()
			default:
				r.skip(depth + 2)
			}
			if !r.ok {
				return nil
			}
		}
	}
	return ps
}

// fastMakeCredentialRequest decodes data into the zero value r as
// decodeMessage would, or reports false.
func fastMakeCredentialRequest(data []byte, r *MakeCredentialRequest) bool {
	rd := reader{b: data, ok: true}
	n := rd.container(5, 0)
	var prev []byte
	for range n {
		switch rd.intKey(&prev) {
		case 1:
			r.ClientDataHash = rd.bytes()
		case 2:
			r.RP = new(RPEntity)
			rd.rp(r.RP, 1)
		case 3:
			r.User = new(UserEntity)
			rd.user(r.User, 1)
		case 4:
			r.PubKeyCredParams = rd.params(1)
		case 5:
			r.ExcludeList = rd.descriptors(1)
		case 6:
			r.Extensions = rd.rawMap(1)
		case 7:
			r.Options = rd.boolMap(1)
		case 8:
			r.PinUvAuthParam = rd.bytes()
		case 9:
			r.PinUvAuthProtocol = rd.uint()
		case 10:
			r.EnterpriseAttestation = rd.uint()
		default:
			rd.skip(1)
		}
		if !rd.ok {
			return false
		}
	}
	return rd.ok && len(rd.b) == 0
}

// fastMakeCredentialResponse decodes data into the zero value r as
// decodeMessage would, or reports false.
func fastMakeCredentialResponse(data []byte, r *MakeCredentialResponse) bool {
	rd := reader{b: data, ok: true}
	n := rd.container(5, 0)
	var prev []byte
	for range n {
		switch rd.intKey(&prev) {
		case 1:
			r.Format = rd.text()
		case 2:
			r.AuthData = rd.bytes()
		case 3:
			r.AttStmt = rd.raw(1)
		case 4:
			r.EpAtt = rd.boolean()
		case 5:
			r.LargeBlobKey = rd.bytes()
		default:
			rd.skip(1)
		}
		if !rd.ok {
			return false
		}
	}
	return rd.ok && len(rd.b) == 0
}
