package ctap

import (
	"encoding/binary"
	"fmt"
)

// AuthDataFlags is the flags byte of authenticator data (WebAuthn L3
// §6.1). Bits 1 and 5 are reserved and kept as they are.
type AuthDataFlags byte

// Authenticator data flags (WebAuthn L3 §6.1).
const (
	FlagUP AuthDataFlags = 0x01 // user present
	FlagUV AuthDataFlags = 0x04 // user verified
	FlagBE AuthDataFlags = 0x08 // backup eligible
	FlagBS AuthDataFlags = 0x10 // backed up
	FlagAT AuthDataFlags = 0x40 // attested credential data included
	FlagED AuthDataFlags = 0x80 // extension data included
)

// Sizes in authenticator data (WebAuthn L3 §6.1 and §6.5.1).
const (
	authDataFixedLen = 32 + 1 + 4 // rpIdHash, flags, signCount
	// maxCredentialIDLen is the longest credential ID that attested
	// credential data may carry (WebAuthn L3 §6.5.1: at most 1023 bytes).
	maxCredentialIDLen = 1023
)

// AttestedCredential is the attested credential data of authenticator data
// (WebAuthn L3 §6.5.1).
type AttestedCredential struct {
	AAGUID       [16]byte
	CredentialID []byte // 1 to 1023 bytes
	PublicKey    []byte // the credential public key as a COSE_Key CBOR map; see ParsePublicKey
}

// AuthData is authenticator data (WebAuthn L3 §6.1), the structure an
// authenticator signs in attestations and assertions.
type AuthData struct {
	RPIDHash  [32]byte // SHA-256 of the RP ID
	Flags     AuthDataFlags
	SignCount uint32
	Attested  *AttestedCredential // nil if absent
	// Extensions is the extension outputs, one CBOR map in CTAP2 canonical
	// form, kept raw; nil (or empty) if absent.
	Extensions []byte
}

// Marshal encodes the authenticator data. It sets FlagAT and FlagED from
// the presence of Attested and Extensions, whatever Flags says, so that the
// result always parses. It panics if Attested.CredentialID is longer than
// 65535 bytes, which no length field can express.
func (a *AuthData) Marshal() []byte {
	flags := a.Flags &^ (FlagAT | FlagED)
	n := authDataFixedLen + len(a.Extensions)
	if a.Attested != nil {
		flags |= FlagAT
		n += 16 + 2 + len(a.Attested.CredentialID) + len(a.Attested.PublicKey)
	}
	if len(a.Extensions) > 0 {
		flags |= FlagED
	}
	b := make([]byte, 0, n)
	b = append(b, a.RPIDHash[:]...)
	b = append(b, byte(flags))
	b = binary.BigEndian.AppendUint32(b, a.SignCount)
	if ac := a.Attested; ac != nil {
		if len(ac.CredentialID) > 0xFFFF {
			panic(fmt.Sprintf("ctap: credential ID of %d bytes does not fit authenticator data", len(ac.CredentialID)))
		}
		b = append(b, ac.AAGUID[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(ac.CredentialID)))
		b = append(b, ac.CredentialID...)
		b = append(b, ac.PublicKey...)
	}
	return append(b, a.Extensions...)
}

// ParseAuthData parses authenticator data strictly (WebAuthn L3 §6.1): the
// AT flag is set if and only if attested credential data follows, ED if
// and only if an extensions map follows; the credential ID is 1 to 1023
// bytes; the public key and the extensions are each
// one CBOR map in CTAP2 canonical form; nothing may follow. The public key
// is not interpreted; see ParsePublicKey.
//
// Errors are *SyntaxError with What "authenticator data", wrapping
// ErrMalformed for truncated data, ErrInvalidValue for a bad credential ID
// length, ErrWrongType for a key or extensions that are not maps,
// ErrTrailingBytes for bytes the flags do not account for, or the CBOR
// errors of CheckCanonical. The result does not alias b.
func ParseAuthData(b []byte) (*AuthData, error) {
	const what = "authenticator data"
	if len(b) < authDataFixedLen {
		return nil, syntaxErr(what, ErrMalformed, fmt.Sprintf("%d bytes, need at least %d", len(b), authDataFixedLen))
	}
	a := &AuthData{
		Flags:     AuthDataFlags(b[32]),
		SignCount: binary.BigEndian.Uint32(b[33:37]),
	}
	copy(a.RPIDHash[:], b[:32])
	rest := b[authDataFixedLen:]
	if a.Flags&FlagAT != 0 {
		if len(rest) < 16+2 {
			return nil, syntaxErr(what, ErrMalformed, "attested credential data truncated")
		}
		ac := new(AttestedCredential)
		copy(ac.AAGUID[:], rest[:16])
		idLen := int(binary.BigEndian.Uint16(rest[16:18]))
		rest = rest[18:]
		if idLen == 0 || idLen > maxCredentialIDLen {
			return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("credential ID length %d", idLen))
		}
		if len(rest) < idLen {
			return nil, syntaxErr(what, ErrMalformed, "credential ID truncated")
		}
		ac.CredentialID = append([]byte(nil), rest[:idLen]...)
		rest = rest[idLen:]
		key, after, err := firstMap(what, "credential public key", rest)
		if err != nil {
			return nil, err
		}
		ac.PublicKey = append([]byte(nil), key...)
		rest = after
		a.Attested = ac
	}
	if a.Flags&FlagED != 0 {
		ext, after, err := firstMap(what, "extensions", rest)
		if err != nil {
			return nil, err
		}
		if len(after) != 0 {
			return nil, syntaxErr(what, ErrTrailingBytes, fmt.Sprintf("%d bytes after extensions", len(after)))
		}
		a.Extensions = append([]byte(nil), ext...)
		rest = nil
	}
	if len(rest) != 0 {
		return nil, syntaxErr(what, ErrTrailingBytes, fmt.Sprintf("%d bytes not covered by the AT and ED flags", len(rest)))
	}
	return a, nil
}

// firstMap splits the first CBOR item off b, which must be a map in CTAP2
// canonical form.
func firstMap(what, field string, b []byte) (item, rest []byte, err error) {
	if isES256Key(b) {
		return b[:es256KeyLen], b[es256KeyLen:], nil
	}
	return firstMapSlow(what, field, b)
}

// firstMapSlow is firstMap by generic decoding.
func firstMapSlow(what, field string, b []byte) (item, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, syntaxErr(what, ErrMalformed, field+" missing")
	}
	if b[0]>>5 != 5 {
		return nil, nil, syntaxErr(what, ErrWrongType, field+" is not a CBOR map")
	}
	var v any
	rest, err = anyDec.UnmarshalFirst(b, &v)
	if err != nil {
		return nil, nil, classify(what, err)
	}
	item = b[:len(b)-len(rest)]
	// Decoding once more in CheckCanonical costs little next to the
	// signature check that follows and keeps one definition of canonical.
	if err := CheckCanonical(what, item); err != nil {
		return nil, nil, err
	}
	return item, rest, nil
}
