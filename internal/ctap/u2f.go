package ctap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"
)

// APDU is an ISO 7816-4 command APDU carrying a U2F request, the payload
// of CTAPHID_MSG (CTAP 2.1 §11.2.9.1.1; FIDO U2F Raw Message Formats,
// "Request Message Framing").
type APDU struct {
	CLA, INS, P1, P2 byte
	// Data is the command data, nil if none. A parsed APDU's Data aliases
	// the parsed bytes.
	Data []byte
	// Le is the maximum response length the host expects: 0 when absent,
	// else 1 to 65536 (an encoded zero means 256 in the short form and
	// 65536 in the extended form).
	Le int
}

// U2F instructions (FIDO U2F Raw Message Formats, "Registration
// Messages", "Authentication Messages", "GetVersion Request and Response").
const (
	U2FRegister     byte = 0x01 // U2F_REGISTER
	U2FAuthenticate byte = 0x02 // U2F_AUTHENTICATE
	U2FVersion      byte = 0x03 // U2F_VERSION
)

// U2F_AUTHENTICATE control bytes, carried in P1 (FIDO U2F Raw Message
// Formats, "Authentication Request Message"; U2FDontEnforceUP is from
// U2F v1.2 and CTAP 2.1 §10.3).
const (
	U2FCheckOnly     byte = 0x07 // check the key handle only, never sign
	U2FEnforceUP     byte = 0x03 // sign only after a touch
	U2FDontEnforceUP byte = 0x08 // sign without a touch
)

// Lengths in U2F messages (FIDO U2F Raw Message Formats, response
// messages).
const (
	u2fPublicKeyLen   = 65 // uncompressed P-256 point
	u2fRegisterMarker = 0x05
	maxECDSASigLen    = 72 // DER ECDSA P-256: 2 + 2 × (2 + 33)
	minECDSASigLen    = 8  // DER SEQUENCE of two one-byte INTEGERs
	maxShortLc        = 255
	maxExtendedLc     = 65535
	maxLe             = 65536
)

// StatusWord is the two-byte status (SW1 SW2) ending every U2F response
// (FIDO U2F Raw Message Formats, "Status Codes"). Values other than
// SWNoError are errors; compare them with errors.Is.
type StatusWord uint16

// U2F status words (FIDO U2F Raw Message Formats, "Status Codes").
const (
	SWNoError                StatusWord = 0x9000 // SW_NO_ERROR
	SWConditionsNotSatisfied StatusWord = 0x6985 // SW_CONDITIONS_NOT_SATISFIED: touch needed, or check-only matched
	SWWrongData              StatusWord = 0x6A80 // SW_WRONG_DATA: e.g. unknown key handle
	SWWrongLength            StatusWord = 0x6700 // SW_WRONG_LENGTH
	SWClaNotSupported        StatusWord = 0x6E00 // SW_CLA_NOT_SUPPORTED
	SWInsNotSupported        StatusWord = 0x6D00 // SW_INS_NOT_SUPPORTED
)

var statusWordNames = map[StatusWord]string{
	SWNoError:                "SW_NO_ERROR",
	SWConditionsNotSatisfied: "SW_CONDITIONS_NOT_SATISFIED",
	SWWrongData:              "SW_WRONG_DATA",
	SWWrongLength:            "SW_WRONG_LENGTH",
	SWClaNotSupported:        "SW_CLA_NOT_SUPPORTED",
	SWInsNotSupported:        "SW_INS_NOT_SUPPORTED",
}

// Error implements error. The text names the spec constant.
func (sw StatusWord) Error() string {
	if n, ok := statusWordNames[sw]; ok {
		return fmt.Sprintf("ctap: U2F status %s (0x%04x)", n, uint16(sw))
	}
	return fmt.Sprintf("ctap: U2F status 0x%04x", uint16(sw))
}

// ParseAPDU parses a command APDU in any ISO 7816-4 case, short or
// extended, as U2F hosts send them (FIDO U2F Raw Message Formats,
// "Request Message Framing").
// Lc must match the data exactly and the encoded lengths must be
// consistent with len(b), with one leniency real hosts need: an extended
// Lc of zero followed by an extended Le, as python-fido2 sends, means no
// data. An error wraps SWWrongLength, the status a U2F authenticator
// answers with.
func ParseAPDU(b []byte) (*APDU, error) {
	if len(b) < 4 {
		return nil, apduErr("%d bytes, shorter than a header", len(b))
	}
	a := &APDU{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1: header only
	case len(body) == 1: // case 2S: Le
		a.Le = shortLe(body[0])
	case body[0] != 0: // cases 3S and 4S: Lc, data, optional Le
		lc, rest := int(body[0]), body[1:]
		switch len(rest) {
		case lc:
		case lc + 1:
			a.Le = shortLe(rest[lc])
		default:
			return nil, apduErr("short Lc %d with %d bytes after it", lc, len(rest))
		}
		a.Data = rest[:lc]
	case len(body) == 3: // case 2E: 00, Le (2 bytes)
		a.Le = extendedLe(body[1:])
	case len(body) < 3:
		return nil, apduErr("extended length truncated")
	default: // cases 3E and 4E: 00, Lc (2 bytes), data, optional Le
		lc, rest := int(binary.BigEndian.Uint16(body[1:3])), body[3:]
		if lc == 0 {
			// ISO 7816-4 has no extended Lc of zero, but U2F hosts
			// send one for a request without data: python-fido2 frames
			// U2F_VERSION as 00 03 00 00 | 00 0000 | 0000, and a
			// YubiKey answers it. Read it as "no data", then Le.
			if len(rest) != 2 {
				return nil, apduErr("extended Lc of zero with %d bytes after it, want a 2-byte Le", len(rest))
			}
			a.Le = extendedLe(rest)
			return a, nil
		}
		switch len(rest) {
		case lc:
		case lc + 2:
			a.Le = extendedLe(rest[lc:])
		default:
			return nil, apduErr("extended Lc %d with %d bytes after it", lc, len(rest))
		}
		a.Data = rest[:lc]
	}
	return a, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

func extendedLe(b []byte) int {
	if n := int(binary.BigEndian.Uint16(b)); n != 0 {
		return n
	}
	return maxLe
}

func apduErr(format string, args ...any) error {
	return fmt.Errorf("ctap: parsing APDU: %s: %w", fmt.Sprintf(format, args...), SWWrongLength)
}

// Marshal encodes the APDU with extended lengths, as FIDO U2F Raw Message
// Formats ("Request Message Framing") asks of hosts: the header, then
// 00 | Lc | data if there is data, then Le in two bytes if Le > 0 (65536
// and above as 0000; a lone Le is preceded by 00). It panics if Data is
// longer than 65535 bytes, which Lc cannot express.
func (a *APDU) Marshal() []byte {
	if len(a.Data) > maxExtendedLc {
		panic(fmt.Sprintf("ctap: APDU data of %d bytes exceeds 65535", len(a.Data)))
	}
	le := min(a.Le, maxLe)
	b := make([]byte, 0, 4+3+len(a.Data)+2)
	b = append(b, a.CLA, a.INS, a.P1, a.P2)
	if len(a.Data) > 0 {
		b = append(b, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
		b = append(b, a.Data...)
	} else if le > 0 {
		b = append(b, 0)
	}
	if le > 0 {
		b = binary.BigEndian.AppendUint16(b, uint16(le)) // 65536 wraps to 0000
	}
	return b
}

// SplitStatusWord splits a U2F response into its body, which aliases resp,
// and the trailing status word (FIDO U2F Raw Message Formats, "Response
// Message Framing"). A
// response shorter than two bytes gives a *SyntaxError wrapping
// ErrMalformed. The status word is returned as a value, not as err.
func SplitStatusWord(resp []byte) (body []byte, sw StatusWord, err error) {
	if len(resp) < 2 {
		return nil, 0, syntaxErr("U2F response", ErrMalformed, fmt.Sprintf("%d bytes, no status word", len(resp)))
	}
	n := len(resp) - 2
	return resp[:n], StatusWord(binary.BigEndian.Uint16(resp[n:])), nil
}

// U2FRegisterResponse is the body of a successful U2F_REGISTER response
// (FIDO U2F Raw Message Formats, "Registration Response Message:
// Success"), without the status word.
type U2FRegisterResponse struct {
	PublicKey   []byte // uncompressed P-256 point, 65 bytes starting 0x04
	KeyHandle   []byte // 1 to 255 bytes
	Certificate []byte // X.509 attestation certificate, DER
	Signature   []byte // ASN.1 DER ECDSA signature
}

// Marshal encodes the response body: 0x05 | public key | key handle
// length | key handle | certificate | signature. It panics if KeyHandle is
// longer than 255 bytes, which its length byte cannot express.
func (r *U2FRegisterResponse) Marshal() []byte {
	if len(r.KeyHandle) > 255 {
		panic(fmt.Sprintf("ctap: U2F key handle of %d bytes exceeds 255", len(r.KeyHandle)))
	}
	b := make([]byte, 0, 2+len(r.PublicKey)+len(r.KeyHandle)+len(r.Certificate)+len(r.Signature))
	b = append(b, u2fRegisterMarker)
	b = append(b, r.PublicKey...)
	b = append(b, byte(len(r.KeyHandle)))
	b = append(b, r.KeyHandle...)
	b = append(b, r.Certificate...)
	return append(b, r.Signature...)
}

// ParseU2FRegisterResponse parses a U2F_REGISTER response body (FIDO U2F
// Raw Message Formats, "Registration Response Message: Success") strictly:
// the reserved byte is 0x05, the public key is a P-256 point, the key
// handle is not empty, the certificate's length comes from its DER
// SEQUENCE header (at most 65535 content bytes), and the rest is exactly
// one DER ECDSA signature. Errors are *SyntaxError with What "U2F register
// response". The result does not alias b.
func ParseU2FRegisterResponse(b []byte) (*U2FRegisterResponse, error) {
	const what = "U2F register response"
	if len(b) < 1+u2fPublicKeyLen+1 {
		return nil, syntaxErr(what, ErrMalformed, fmt.Sprintf("%d bytes", len(b)))
	}
	if b[0] != u2fRegisterMarker {
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("reserved byte 0x%02x, want 0x05", b[0]))
	}
	pub := b[1 : 1+u2fPublicKeyLen]
	if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub); err != nil {
		return nil, syntaxErr(what, ErrInvalidValue, "public key is not an uncompressed P-256 point")
	}
	rest := b[1+u2fPublicKeyLen:]
	khLen := int(rest[0])
	rest = rest[1:]
	if khLen == 0 {
		return nil, syntaxErr(what, ErrInvalidValue, "empty key handle")
	}
	if len(rest) < khLen {
		return nil, syntaxErr(what, ErrMalformed, "key handle truncated")
	}
	kh := rest[:khLen]
	rest = rest[khLen:]
	certLen, err := derSequenceLen(rest)
	if err != nil {
		return nil, syntaxErr(what, err, "certificate: "+derDetail(err))
	}
	cert := rest[:certLen]
	sig := rest[certLen:]
	if err := checkECDSASig(sig); err != nil {
		return nil, syntaxErr(what, err, "signature: "+derDetail(err))
	}
	return &U2FRegisterResponse{
		PublicKey:   clone(pub),
		KeyHandle:   clone(kh),
		Certificate: clone(cert),
		Signature:   clone(sig),
	}, nil
}

// U2FAuthenticateResponse is the body of a successful U2F_AUTHENTICATE
// response (FIDO U2F Raw Message Formats, "Authentication Response
// Message: Success"), without the status word.
type U2FAuthenticateResponse struct {
	UserPresence byte   // bit 0 set if the user was present; other bits zero
	Counter      uint32 // signature counter
	Signature    []byte // ASN.1 DER ECDSA signature
}

// Marshal encodes the response body: user presence | counter (4 bytes, big
// endian) | signature.
func (r *U2FAuthenticateResponse) Marshal() []byte {
	b := make([]byte, 0, 5+len(r.Signature))
	b = append(b, r.UserPresence)
	b = binary.BigEndian.AppendUint32(b, r.Counter)
	return append(b, r.Signature...)
}

// ParseU2FAuthenticateResponse parses a U2F_AUTHENTICATE response body
// (FIDO U2F Raw Message Formats, "Authentication Response Message:
// Success") strictly: only bit 0 of the user
// presence byte may be set and the rest after the counter is exactly one
// DER ECDSA signature. Errors are *SyntaxError with What "U2F authenticate
// response". The result does not alias b.
func ParseU2FAuthenticateResponse(b []byte) (*U2FAuthenticateResponse, error) {
	const what = "U2F authenticate response"
	if len(b) < 5 {
		return nil, syntaxErr(what, ErrMalformed, fmt.Sprintf("%d bytes", len(b)))
	}
	if b[0]&^1 != 0 {
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("user presence byte 0x%02x", b[0]))
	}
	sig := b[5:]
	if err := checkECDSASig(sig); err != nil {
		return nil, syntaxErr(what, err, "signature: "+derDetail(err))
	}
	return &U2FAuthenticateResponse{
		UserPresence: b[0],
		Counter:      binary.BigEndian.Uint32(b[1:5]),
		Signature:    clone(sig),
	}, nil
}

// derSequenceLen returns the length, header included, of the DER SEQUENCE
// at the start of b. It accepts definite lengths of up to two bytes in
// minimal form, which bounds an attestation certificate to 64 KiB. Errors
// are ErrWrongType (not a SEQUENCE), ErrNonCanonical (non-minimal length),
// ErrTooLarge and ErrMalformed (truncated or indefinite).
func derSequenceLen(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, ErrMalformed
	}
	if b[0] != 0x30 {
		return 0, ErrWrongType
	}
	var n, hdr int
	switch l := b[1]; {
	case l < 0x80:
		n, hdr = int(l), 2
	case l == 0x81:
		if len(b) < 3 {
			return 0, ErrMalformed
		}
		n, hdr = int(b[2]), 3
		if n < 0x80 {
			return 0, ErrNonCanonical
		}
	case l == 0x82:
		if len(b) < 4 {
			return 0, ErrMalformed
		}
		n, hdr = int(binary.BigEndian.Uint16(b[2:4])), 4
		if n < 0x100 {
			return 0, ErrNonCanonical
		}
	case l == 0x80:
		return 0, ErrMalformed // indefinite length is BER, not DER
	default:
		return 0, ErrTooLarge
	}
	if len(b)-hdr < n {
		return 0, ErrMalformed
	}
	return hdr + n, nil
}

// checkECDSASig checks that sig is exactly one DER ECDSA-Sig-Value (SEC 1:
// a SEQUENCE of two positive INTEGERs) of a P-256 size, so that a
// signature has one encoding.
func checkECDSASig(sig []byte) error {
	if len(sig) < minECDSASigLen {
		return ErrMalformed
	}
	if len(sig) > maxECDSASigLen {
		return ErrTooLarge
	}
	n, err := derSequenceLen(sig)
	if err != nil {
		return err
	}
	if n != len(sig) {
		return ErrTrailingBytes
	}
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 {
		return ErrMalformed
	}
	if v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return ErrInvalidValue
	}
	// encoding/asn1 enforces minimal INTEGERs, but check the whole
	// encoding once more so no BER leniency can slip through.
	again, err := asn1.Marshal(v)
	if err != nil || string(again) != string(sig) {
		return ErrNonCanonical
	}
	return nil
}

func derDetail(err error) string {
	switch err {
	case ErrWrongType:
		return "not a DER SEQUENCE"
	case ErrNonCanonical:
		return "non-minimal DER length"
	case ErrTooLarge:
		return "too long"
	case ErrTrailingBytes:
		return "bytes after the DER SEQUENCE"
	case ErrInvalidValue:
		return "r or s not positive"
	}
	return "truncated or malformed DER"
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
