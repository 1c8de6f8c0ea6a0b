package ctap

import (
	"bytes"
	"slices"

	"github.com/fxamacker/cbor/v2"
)

// Hand-written encoders for the four messages of every registration and
// sign-in. fxamacker's Marshal walks the struct by reflection, builds each
// field's encoder through a cache keyed by type and sorts map keys on every
// call; these write the same bytes straight from the fields. Like the fast
// decoders they are sound, not complete: anything they do not handle the
// way Marshal would (a nil value Marshal writes as null, a raw extension or
// attestation statement that is not canonical CBOR, which Marshal copies
// after its own well-formedness check) makes them report false, and the
// caller falls back to Marshal. FuzzEncodeDifferential holds them to it.

func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= 0xff:
		return append(dst, m|24, byte(n))
	case n <= 0xffff:
		return append(dst, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendInt(dst []byte, n int64) []byte {
	if n < 0 {
		return appendHead(dst, 1, uint64(-1-n))
	}
	return appendHead(dst, 0, uint64(n))
}

func appendText(dst []byte, s string) []byte { return append(appendHead(dst, 3, uint64(len(s))), s...) }

func appendBytes(dst []byte, b []byte) []byte {
	return append(appendHead(dst, 2, uint64(len(b))), b...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xf5)
	}
	return append(dst, 0xf4)
}

// appendDescriptor writes a PublicKeyCredentialDescriptor: "id", "type",
// then "transports", the CTAP2 canonical order (shorter keys first).
func appendDescriptor(dst []byte, d *CredentialDescriptor) ([]byte, bool) {
	if d.ID == nil {
		return dst, false // Marshal writes null
	}
	n := uint64(2)
	if len(d.Transports) > 0 {
		n++
	}
	dst = appendHead(dst, 5, n)
	dst = appendBytes(appendText(dst, "id"), d.ID)
	dst = appendText(appendText(dst, "type"), d.Type)
	if len(d.Transports) > 0 {
		dst = appendHead(appendText(dst, "transports"), 4, uint64(len(d.Transports)))
		for _, t := range d.Transports {
			dst = appendText(dst, t)
		}
	}
	return dst, true
}

func appendDescriptors(dst []byte, ds []CredentialDescriptor) ([]byte, bool) {
	dst = appendHead(dst, 4, uint64(len(ds)))
	for i := range ds {
		var ok bool
		if dst, ok = appendDescriptor(dst, &ds[i]); !ok {
			return dst, false
		}
	}
	return dst, true
}

// appendUser writes a PublicKeyCredentialUserEntity: "id", "icon", "name",
// "displayName", empty strings left out.
func appendUser(dst []byte, u *UserEntity) ([]byte, bool) {
	if u.ID == nil {
		return dst, false
	}
	n := uint64(1)
	for _, s := range [...]string{u.Icon, u.Name, u.DisplayName} {
		if s != "" {
			n++
		}
	}
	dst = appendBytes(appendText(appendHead(dst, 5, n), "id"), u.ID)
	if u.Icon != "" {
		dst = appendText(appendText(dst, "icon"), u.Icon)
	}
	if u.Name != "" {
		dst = appendText(appendText(dst, "name"), u.Name)
	}
	if u.DisplayName != "" {
		dst = appendText(appendText(dst, "displayName"), u.DisplayName)
	}
	return dst, true
}

// appendOptions writes an options map with its keys in canonical order:
// by the length of their encoding, then bytewise.
func appendOptions(dst []byte, m map[string]bool) []byte {
	var keys [8]string
	ks := keys[:0]
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, compareKeys)
	dst = appendHead(dst, 5, uint64(len(ks)))
	for _, k := range ks {
		dst = appendBool(appendText(dst, k), m[k])
	}
	return dst
}

// compareKeys orders text map keys as SortCTAP2 orders their encodings:
// a shorter string has a shorter or equal head, so length first, then
// bytes.
func compareKeys(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare([]byte(a), []byte(b))
}

// appendExtensions writes an extensions map, each value copied as it is,
// which only canonical values allow.
func appendExtensions(dst []byte, m map[string]cbor.RawMessage) ([]byte, bool) {
	var keys [8]string
	ks := keys[:0]
	for k, v := range m {
		if !quickCanonical(v) {
			return dst, false
		}
		ks = append(ks, k)
	}
	slices.SortFunc(ks, compareKeys)
	dst = appendHead(dst, 5, uint64(len(ks)))
	for _, k := range ks {
		dst = append(appendText(dst, k), m[k]...)
	}
	return dst, true
}

func count(present ...bool) uint64 {
	var n uint64
	for _, p := range present {
		if p {
			n++
		}
	}
	return n
}

// appendGetAssertionRequest appends r as Marshal would, or reports false.
func appendGetAssertionRequest(dst []byte, r *GetAssertionRequest) ([]byte, bool) {
	if r.ClientDataHash == nil {
		return dst, false
	}
	ok := true
	dst = appendHead(dst, 5, count(true, true, len(r.AllowList) > 0, len(r.Extensions) > 0,
		len(r.Options) > 0, len(r.PinUvAuthParam) > 0, r.PinUvAuthProtocol != 0))
	dst = appendText(append(dst, 0x01), r.RPID)
	dst = appendBytes(append(dst, 0x02), r.ClientDataHash)
	if len(r.AllowList) > 0 {
		dst, ok = appendDescriptors(append(dst, 0x03), r.AllowList)
	}
	if ok && len(r.Extensions) > 0 {
		dst, ok = appendExtensions(append(dst, 0x04), r.Extensions)
	}
	if len(r.Options) > 0 {
		dst = appendOptions(append(dst, 0x05), r.Options)
	}
	if len(r.PinUvAuthParam) > 0 {
		dst = appendBytes(append(dst, 0x06), r.PinUvAuthParam)
	}
	if r.PinUvAuthProtocol != 0 {
		dst = appendHead(append(dst, 0x07), 0, r.PinUvAuthProtocol)
	}
	return dst, ok
}

// appendGetAssertionResponse appends r as Marshal would, or reports false.
func appendGetAssertionResponse(dst []byte, r *GetAssertionResponse) ([]byte, bool) {
	if r.AuthData == nil || r.Signature == nil {
		return dst, false
	}
	ok := true
	dst = appendHead(dst, 5, count(r.Credential != nil, true, true, r.User != nil,
		r.NumberOfCredentials != 0, r.UserSelected, len(r.LargeBlobKey) > 0))
	if r.Credential != nil {
		dst, ok = appendDescriptor(append(dst, 0x01), r.Credential)
	}
	dst = appendBytes(append(dst, 0x02), r.AuthData)
	dst = appendBytes(append(dst, 0x03), r.Signature)
	if ok && r.User != nil {
		dst, ok = appendUser(append(dst, 0x04), r.User)
	}
	if r.NumberOfCredentials != 0 {
		dst = appendInt(append(dst, 0x05), int64(r.NumberOfCredentials))
	}
	if r.UserSelected {
		dst = append(dst, 0x06, 0xf5)
	}
	if len(r.LargeBlobKey) > 0 {
		dst = appendBytes(append(dst, 0x07), r.LargeBlobKey)
	}
	return dst, ok
}

// appendMakeCredentialRequest appends r as Marshal would, or reports
// false.
func appendMakeCredentialRequest(dst []byte, r *MakeCredentialRequest) ([]byte, bool) {
	if r.ClientDataHash == nil || r.RP == nil || r.User == nil || r.PubKeyCredParams == nil {
		return dst, false
	}
	ok := true
	dst = appendHead(dst, 5, count(true, true, true, true, len(r.ExcludeList) > 0, len(r.Extensions) > 0,
		len(r.Options) > 0, r.PinUvAuthParam != nil, r.PinUvAuthProtocol != 0, r.EnterpriseAttestation != 0))
	dst = appendBytes(append(dst, 0x01), r.ClientDataHash)
	// rp: "id", "icon", "name".
	rp := r.RP
	dst = appendText(appendText(appendHead(append(dst, 0x02), 5, count(true, rp.Icon != "", rp.Name != "")), "id"), rp.ID)
	if rp.Icon != "" {
		dst = appendText(appendText(dst, "icon"), rp.Icon)
	}
	if rp.Name != "" {
		dst = appendText(appendText(dst, "name"), rp.Name)
	}
	dst, ok = appendUser(append(dst, 0x03), r.User)
	// pubKeyCredParams: each "alg", then "type".
	dst = appendHead(append(dst, 0x04), 4, uint64(len(r.PubKeyCredParams)))
	for _, p := range r.PubKeyCredParams {
		dst = appendInt(appendText(append(dst, 0xa2), "alg"), p.Alg)
		dst = appendText(appendText(dst, "type"), p.Type)
	}
	if ok && len(r.ExcludeList) > 0 {
		dst, ok = appendDescriptors(append(dst, 0x05), r.ExcludeList)
	}
	if ok && len(r.Extensions) > 0 {
		dst, ok = appendExtensions(append(dst, 0x06), r.Extensions)
	}
	if len(r.Options) > 0 {
		dst = appendOptions(append(dst, 0x07), r.Options)
	}
	if r.PinUvAuthParam != nil {
		dst = appendBytes(append(dst, 0x08), r.PinUvAuthParam)
	}
	if r.PinUvAuthProtocol != 0 {
		dst = appendHead(append(dst, 0x09), 0, r.PinUvAuthProtocol)
	}
	if r.EnterpriseAttestation != 0 {
		dst = appendHead(append(dst, 0x0a), 0, r.EnterpriseAttestation)
	}
	return dst, ok
}

// appendMakeCredentialResponse appends r as Marshal would, or reports
// false.
func appendMakeCredentialResponse(dst []byte, r *MakeCredentialResponse) ([]byte, bool) {
	if r.AuthData == nil || !quickCanonical(r.AttStmt) {
		return dst, false
	}
	dst = appendHead(dst, 5, count(true, true, true, r.EpAtt, len(r.LargeBlobKey) > 0))
	dst = appendText(append(dst, 0x01), r.Format)
	dst = appendBytes(append(dst, 0x02), r.AuthData)
	dst = append(append(dst, 0x03), r.AttStmt...)
	if r.EpAtt {
		dst = append(dst, 0x04, 0xf5)
	}
	if len(r.LargeBlobKey) > 0 {
		dst = appendBytes(append(dst, 0x05), r.LargeBlobKey)
	}
	return dst, true
}

// appendFast appends v with the hand-written encoder for its type, or
// reports false for a type it has none for or a value it leaves to
// Marshal.
func appendFast(dst []byte, v any) ([]byte, bool) {
	switch m := v.(type) {
	case *GetAssertionRequest:
		if m != nil {
			return appendGetAssertionRequest(dst, m)
		}
	case *GetAssertionResponse:
		if m != nil {
			return appendGetAssertionResponse(dst, m)
		}
	case *MakeCredentialRequest:
		if m != nil {
			return appendMakeCredentialRequest(dst, m)
		}
	case *MakeCredentialResponse:
		if m != nil {
			return appendMakeCredentialResponse(dst, m)
		}
	}
	return dst, false
}
