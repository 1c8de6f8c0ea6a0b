package ctap

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// The functions here are the fast path of the package's CBOR checks: one
// pass over the bytes that allocates nothing. They are sound but not
// complete: true means the slow check (decoding generically, encoding
// again and comparing) would pass too; false only means "not proven", and
// callers then run the slow check, which also gives the exact error. So
// they may refuse more than the slow check does (floats, tags, simple
// values other than false, true and null, byte-string map keys, negative
// integers beyond int64), things no CTAP message carries.

// quickCanonical reports whether data is exactly one CBOR item that
// CheckCanonical accepts: well-formed, definite lengths, no tags, valid
// UTF-8, minimal heads, map keys in strictly increasing bytewise order
// (fxamacker's SortCTAP2, which the re-encoding uses), and within the
// nesting and size limits that the decoder enforces.
func quickCanonical(data []byte) bool {
	rest, ok := scanItem(data, 0)
	return ok && len(rest) == 0
}

// head reads a minimal definite-length item head of major types 0 to 6.
func head(b []byte) (major byte, arg uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, 0, nil, false
	}
	major, ai := b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), b[1:], true
	case ai == 24 && len(b) >= 2:
		arg = uint64(b[1])
		return major, arg, b[2:], arg >= 24
	case ai == 25 && len(b) >= 3:
		arg = uint64(b[1])<<8 | uint64(b[2])
		return major, arg, b[3:], arg > math.MaxUint8
	case ai == 26 && len(b) >= 5:
		arg = uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
		return major, arg, b[5:], arg > math.MaxUint16
	case ai == 27 && len(b) >= 9:
		for _, c := range b[1:9] {
			arg = arg<<8 | uint64(c)
		}
		return major, arg, b[9:], arg > math.MaxUint32
	}
	return 0, 0, nil, false // truncated, reserved (28-30) or indefinite (31)
}

// scanItem checks one item at the start of b, depth containers deep, and
// returns what follows it.
func scanItem(b []byte, depth int) (rest []byte, ok bool) {
	if len(b) > 0 && b[0]>>5 == 7 {
		// false, true and null only: undefined re-encodes as null, and
		// floats and other simple values are left to the slow check.
		return b[1:], b[0] >= 0xf4 && b[0] <= 0xf6
	}
	major, arg, rest, ok := head(b)
	if !ok {
		return nil, false
	}
	switch major {
	case 0:
		return rest, true
	case 1:
		return rest, arg <= math.MaxInt64 // beyond, the decoder makes a big.Int
	case 2, 3:
		if arg > uint64(len(rest)) {
			return nil, false
		}
		if major == 3 && !utf8.Valid(rest[:arg]) {
			return nil, false
		}
		return rest[arg:], true
	case 4:
		if depth+1 > maxNesting || arg > maxArrayLen {
			return nil, false
		}
		for range arg {
			if rest, ok = scanItem(rest, depth+1); !ok {
				return nil, false
			}
		}
		return rest, true
	case 5:
		if depth+1 > maxNesting || arg > maxMapPairs {
			return nil, false
		}
		var prev []byte
		for i := range arg {
			// Integer and text keys only; the encoder sorts keys by
			// their encoding, so strictly increasing bytes is both
			// canonical order and the absence of duplicates.
			if len(rest) == 0 || (rest[0]>>5 != 0 && rest[0]>>5 != 1 && rest[0]>>5 != 3) {
				return nil, false
			}
			after, ok := scanItem(rest, depth+1)
			if !ok {
				return nil, false
			}
			key := rest[:len(rest)-len(after)]
			if i > 0 && bytes.Compare(prev, key) >= 0 {
				return nil, false
			}
			prev = key
			if rest, ok = scanItem(after, depth+1); !ok {
				return nil, false
			}
		}
		return rest, true
	}
	return nil, false // tags
}

// quickFaithful reports whether out, the re-encoding of what was decoded
// from in, holds at every place the same value as in, with the semantics
// of faithful: map keys that only one side has are skipped, arrays must be
// as long, and everything else must be equal. in must have passed
// quickCanonical. Like quickCanonical it is sound, not complete: false
// sends the caller to faithful for the answer and the place.
func quickFaithful(in, out []byte) bool {
	restIn, restOut, ok := sameItem(in, out, 0)
	return ok && len(restIn) == 0 && len(restOut) == 0
}

func sameItem(in, out []byte, depth int) (restIn, restOut []byte, ok bool) {
	if depth > maxNesting || len(in) == 0 || len(out) == 0 {
		return nil, nil, false
	}
	if out[0]>>5 == 7 || in[0]>>5 == 7 || (out[0]>>5 != 4 && out[0]>>5 != 5) {
		// Scalars: both encodings are canonical, so equal values have
		// equal bytes (floats, which quickCanonical refuses in in, are
		// refused in out as well, since NaN is not equal to itself).
		afterIn, ok := scanItem(in, depth)
		if !ok {
			return nil, nil, false
		}
		afterOut, ok := scanItem(out, depth)
		if !ok {
			return nil, nil, false
		}
		return afterIn, afterOut, bytes.Equal(in[:len(in)-len(afterIn)], out[:len(out)-len(afterOut)])
	}
	mi, ni, restIn, ok := head(in)
	if !ok {
		return nil, nil, false
	}
	mo, no, restOut, ok := head(out)
	if !ok || mi != mo {
		return nil, nil, false
	}
	if mo == 4 {
		if ni != no {
			return nil, nil, false
		}
		for range no {
			if restIn, restOut, ok = sameItem(restIn, restOut, depth+1); !ok {
				return nil, nil, false
			}
		}
		return restIn, restOut, true
	}
	// Maps: both sides are sorted the same way, so a merge walk pairs the
	// keys they share.
	var keyIn, afterKeyIn []byte
	nextIn := func() bool {
		if ni == 0 {
			keyIn = nil
			return true
		}
		ni--
		var ok bool
		afterKeyIn, ok = scanItem(restIn, depth+1)
		keyIn = restIn[:len(restIn)-len(afterKeyIn)]
		return ok
	}
	if !nextIn() {
		return nil, nil, false
	}
	for range no {
		afterKeyOut, ok := scanItem(restOut, depth+1)
		if !ok {
			return nil, nil, false
		}
		keyOut := restOut[:len(restOut)-len(afterKeyOut)]
		for keyIn != nil && bytes.Compare(keyIn, keyOut) < 0 {
			// A key only in the input: its value is skipped.
			if restIn, ok = scanItem(afterKeyIn, depth+1); !ok || !nextIn() {
				return nil, nil, false
			}
		}
		if keyIn != nil && bytes.Equal(keyIn, keyOut) {
			if restIn, restOut, ok = sameItem(afterKeyIn, afterKeyOut, depth+1); !ok || !nextIn() {
				return nil, nil, false
			}
			continue
		}
		// A key only in the output.
		if restOut, ok = scanItem(afterKeyOut, depth+1); !ok {
			return nil, nil, false
		}
	}
	for keyIn != nil {
		if restIn, ok = scanItem(afterKeyIn, depth+1); !ok || !nextIn() {
			return nil, nil, false
		}
	}
	return restIn, restOut, true
}
