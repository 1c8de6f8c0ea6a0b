package ctap

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits on decoded CBOR. CTAP 2.1 §8 allows at most four levels of nesting
// in messages; these bounds are looser so that extensions fit, yet tight
// enough that a hostile peer cannot make a decoder allocate without bound.
const (
	maxNesting  = 8
	maxArrayLen = 256
	maxMapPairs = 256
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
	// anyDec decodes into generic values for the canonical-form check.
	anyDec cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	opts := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxArrayLen,
		MaxMapPairs:       maxMapPairs,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		DefaultMapType:    nil,
		UTF8:              cbor.UTF8RejectInvalid,
		// The library matches text keys to struct fields case-insensitively
		// by default, which would accept {"ID": ...} for "id" and call
		// {"id", "Id"} a duplicate. CTAP map keys are exact (CTAP 2.1 §8).
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}
	if decMode, err = opts.DecMode(); err != nil {
		panic(err)
	}
	opts.ExtraReturnErrors = cbor.ExtraDecErrorNone
	if anyDec, err = opts.DecMode(); err != nil {
		panic(err)
	}
}

// Errors for malformed CBOR. Every decode error returned by this package
// wraps exactly one of them, inside a *SyntaxError.
var (
	ErrMalformed     = errors.New("malformed CBOR")
	ErrTrailingBytes = errors.New("trailing bytes after CBOR item")
	ErrDuplicateKey  = errors.New("duplicate map key")
	ErrNonCanonical  = errors.New("CBOR not in CTAP2 canonical form")
	ErrTooDeep       = errors.New("CBOR nested too deeply")
	ErrTooLarge      = errors.New("CBOR array or map too large")
	ErrWrongType     = errors.New("CBOR value of unexpected type")
	ErrMissingField  = errors.New("required field missing")
	ErrUnknownField  = errors.New("unknown field")
	ErrInvalidValue  = errors.New("field value out of range")
)

// SyntaxError reports a CBOR message that could not be decoded. Err is one
// of the Err* sentinels above; Status is the CTAP status an authenticator
// answers with.
type SyntaxError struct {
	What   string // the message or field being decoded
	Err    error  // one of ErrMalformed, ErrTrailingBytes, ...
	Detail string // the decoder's own words, for people
}

// Error implements error, naming the message and the sentinel.
func (e *SyntaxError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("ctap: decoding %s: %v: %s", e.What, e.Err, e.Detail)
	}
	return fmt.Sprintf("ctap: decoding %s: %v", e.What, e.Err)
}

// Unwrap returns the sentinel, so that errors.Is matches it.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Status maps the decode failure onto the CTAP status an authenticator
// returns for it (CTAP 2.1 §8.2 and §6 "Message encoding").
func (e *SyntaxError) Status() Status {
	switch e.Err {
	case ErrWrongType:
		return StatusCBORUnexpectedType
	case ErrMissingField:
		return StatusMissingParameter
	case ErrInvalidValue:
		return StatusInvalidParameter
	case ErrTooLarge:
		return StatusLimitExceeded
	default:
		return StatusInvalidCBOR
	}
}

func syntaxErr(what string, sentinel error, detail string) error {
	return &SyntaxError{What: what, Err: sentinel, Detail: detail}
}

// Marshal encodes v in CTAP2 canonical CBOR (CTAP 2.1 §8 "CTAP2 canonical
// CBOR encoding form").
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// MustMarshal is Marshal for values that always encode, such as the
// package's own message types; it panics on error.
func MustMarshal(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Unmarshal strictly decodes one CTAP2 canonical CBOR item from data into v.
// It rejects trailing bytes, duplicate keys, indefinite lengths, tags,
// invalid UTF-8, nesting deeper than the message limits and any encoding
// that is not canonical. what names the message in errors.
func Unmarshal(what string, data []byte, v any) error {
	if err := CheckCanonical(what, data); err != nil {
		return err
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return classify(what, err)
	}
	return nil
}

// UnmarshalLenient decodes like Unmarshal but accepts unknown map keys in
// struct targets, for messages whose spec says to ignore unknown keys.
func UnmarshalLenient(what string, data []byte, v any) error {
	if err := CheckCanonical(what, data); err != nil {
		return err
	}
	if err := anyDec.Unmarshal(data, v); err != nil {
		return classify(what, err)
	}
	return nil
}

// CheckCanonical reports whether data is exactly one well-formed CBOR item
// in CTAP2 canonical form: decoding it generically and encoding it again
// must give the same bytes. This catches non-minimal integer and length
// encodings, unsorted map keys and floats in a wider form than needed.
func CheckCanonical(what string, data []byte) error {
	if quickCanonical(data) {
		return nil
	}
	return checkCanonicalSlow(what, data)
}

// checkCanonicalSlow is CheckCanonical by its definition, and the source
// of its errors.
func checkCanonicalSlow(what string, data []byte) error {
	if len(data) == 0 {
		return syntaxErr(what, ErrMalformed, "empty input")
	}
	var v any
	rest, err := anyDec.UnmarshalFirst(data, &v)
	if err != nil {
		return classify(what, err)
	}
	if len(rest) != 0 {
		return syntaxErr(what, ErrTrailingBytes, fmt.Sprintf("%d bytes", len(rest)))
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return syntaxErr(what, ErrMalformed, err.Error())
	}
	if !bytes.Equal(again, data) {
		return syntaxErr(what, ErrNonCanonical, "")
	}
	return nil
}

func classify(what string, err error) error {
	var (
		dup   *cbor.DupMapKeyError
		deep  *cbor.MaxNestedLevelError
		arr   *cbor.MaxArrayElementsError
		mp    *cbor.MaxMapPairsError
		typ   *cbor.UnmarshalTypeError
		extra *cbor.ExtraneousDataError
		unk   *cbor.UnknownFieldError
		se    *SyntaxError
	)
	switch {
	case errors.As(err, &se):
		return err
	case errors.As(err, &dup):
		return syntaxErr(what, ErrDuplicateKey, err.Error())
	case errors.As(err, &deep):
		return syntaxErr(what, ErrTooDeep, err.Error())
	case errors.As(err, &arr), errors.As(err, &mp):
		return syntaxErr(what, ErrTooLarge, err.Error())
	case errors.As(err, &typ):
		return syntaxErr(what, ErrWrongType, err.Error())
	case errors.As(err, &extra):
		return syntaxErr(what, ErrTrailingBytes, err.Error())
	case errors.As(err, &unk):
		return syntaxErr(what, ErrUnknownField, err.Error())
	default:
		return syntaxErr(what, ErrMalformed, err.Error())
	}
}
