package ctap

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the seed corpus files under testdata/fuzz")

// decodeSentinels are the errors every decode failure must wrap one of.
var decodeSentinels = []error{
	ErrMalformed, ErrTrailingBytes, ErrDuplicateKey, ErrNonCanonical, ErrTooDeep,
	ErrTooLarge, ErrWrongType, ErrMissingField, ErrUnknownField, ErrInvalidValue,
}

// checkDecodeError asserts the error contract of the parsers: a
// *SyntaxError wrapping one sentinel, with a failing CTAP status.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
	}
	n := 0
	for _, s := range decodeSentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v wraps %d sentinels, want 1", err, n)
	}
	if se.Status() == StatusOK {
		t.Fatalf("error %v maps to StatusOK", err)
	}
}

// fuzzSeeds gives each fuzz target its valid and invalid seed inputs. The
// same seeds are written to testdata/fuzz by TestWriteFuzzCorpus.
func fuzzSeeds(tb testing.TB) map[string][][]byte {
	tb.Helper()
	mc := MustMarshal(sampleMakeCredentialRequest())
	ga := MustMarshal(sampleGetAssertionRequest())
	authAT := sampleAuthData(tb, true, true).Marshal()
	u2fReg := sampleU2FRegisterResponse(tb).Marshal()
	u2fAuth := sampleU2FAuthenticateResponse(tb).Marshal()
	return map[string][][]byte{
		"FuzzDecodeMakeCredentialRequest": {
			mc,
			MustMarshal(minimalMakeCredentialRequest()),
			MustMarshal(with(mcMap(), 0x20, []any{"unknown", map[string]any{}})),
			append(bytes.Clone(mc), 0),                     // trailing byte
			MustMarshal(with(mcMap(), 3, nil)),             // no user
			MustMarshal(with(mcMap(), 1, make([]byte, 5))), // short hash
			unhex(tb, "a2 02 a0 01 40"),                    // unsorted
			unhex(tb, "a2 01 40 01 40"),                    // duplicate
		},
		"FuzzDecodeGetAssertionRequest": {
			ga,
			MustMarshal(&GetAssertionRequest{RPID: "x", ClientDataHash: hash32(0)}),
			MustMarshal(with(gaMap(), 3, []any{})),
			MustMarshal(with(gaMap(), 1, nil)),
			MustMarshal(with(gaMap(), 5, map[string]any{"up": nullMarker{}})),
			ga[:len(ga)-1],
		},
		"FuzzDecodeResponses": {
			MustMarshal(sampleMakeCredentialResponse(tb)),
			MustMarshal(sampleGetAssertionResponse(tb)),
			MustMarshal(sampleGetInfoResponse()),
			MustMarshal(map[int]any{1: []string{"FIDO_2_2"}, 3: make([]byte, 16), 0x16: []string{"packed"}}),
			MustMarshal(map[int]any{1: "packed", 2: []byte{1}, 3: []any{}}),
			MustMarshal(map[int]any{2: []byte{1}, 3: []byte{2}, 5: -1}),
		},
		"FuzzParseAuthData": {
			sampleAuthData(tb, false, false).Marshal(),
			sampleAuthData(tb, true, false).Marshal(),
			sampleAuthData(tb, false, true).Marshal(),
			authAT,
			authAT[:len(authAT)-3],
			append(bytes.Clone(authAT), 0xa0),
		},
		"FuzzParsePublicKey": {
			mustCOSE(tb, &testP256Key(tb).PublicKey),
			mustCOSE(tb, testEd25519Key().Public()),
			mustCOSE(tb, testECDHKey(tb).PublicKey()),
			coseRSA(&testRSAKey().PublicKey),
			MustMarshal(with(ec2Map(tb), 2, []byte("kid"))),
			MustMarshal(with(okpMap(), -1, 4)),
		},
		"FuzzParseAPDU": {
			unhex(tb, "00 03 00 00"),
			unhex(tb, "00 03 00 00 00 00 00"),
			append(append(unhex(tb, "00 01 03 00 00 00 40"), make([]byte, 64)...), 0, 0),
			append(unhex(tb, "00 02 07 00 41"), make([]byte, 65)...),
			unhex(tb, "00 01 00 00 05 01 02"),
			unhex(tb, "00 01 00 00 00 00 00 01"),
			unhex(tb, "00 03 00 00 00 00 00 00 00"), // python-fido2's U2F_VERSION
		},
		"FuzzParseU2FResponses": {
			append(bytes.Clone(u2fReg), 0x90, 0x00),
			append(bytes.Clone(u2fAuth), 0x90, 0x00),
			u2fReg,
			u2fAuth,
			{0x69, 0x85},
			append(bytes.Clone(u2fReg[:100]), 0x90, 0x00),
		},
	}
}

func addSeeds(f *testing.F) {
	for _, s := range fuzzSeeds(f)[f.Name()] {
		f.Add(s)
	}
}

// TestWriteFuzzCorpus checks that every fuzz target has seed corpus files
// and, with -update-fuzz-corpus, rewrites the seed-* ones from fuzzSeeds.
// Files with other names are regressions the fuzzer found; they stay.
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := fuzzSeeds(t)
	for name, inputs := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if *updateCorpus {
			// Keep other files: they are inputs the fuzzer once failed on.
			old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
			for _, o := range old {
				if err := os.Remove(o); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, in := range inputs {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestWriteFuzzCorpus -update-fuzz-corpus)", name, err)
		}
		if len(entries) < 3 {
			t.Errorf("%s: %d corpus files, want at least 3", name, len(entries))
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), "go test fuzz v1\n[]byte(") {
				t.Errorf("%s/%s is not a corpus file", name, e.Name())
			}
		}
	}
}

func FuzzDecodeMakeCredentialRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeMakeCredentialRequest(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if len(r.ClientDataHash) != 32 || r.RP.ID == "" || len(r.User.ID) == 0 || len(r.User.ID) > 64 {
			t.Fatalf("accepted an invalid request %+v", r)
		}
		checkRoundTrip(t, data, r, DecodeMakeCredentialRequest)
	})
}

func FuzzDecodeGetAssertionRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeGetAssertionRequest(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if len(r.ClientDataHash) != 32 || r.RPID == "" {
			t.Fatalf("accepted an invalid request %+v", r)
		}
		checkRoundTrip(t, data, r, DecodeGetAssertionRequest)
	})
}

func FuzzDecodeResponses(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeMakeCredentialResponse(data); err != nil {
			checkDecodeError(t, err)
		} else {
			checkRoundTrip(t, data, r, DecodeMakeCredentialResponse)
		}
		if r, err := DecodeGetAssertionResponse(data); err != nil {
			checkDecodeError(t, err)
		} else {
			checkRoundTrip(t, data, r, DecodeGetAssertionResponse)
		}
		if r, err := DecodeGetInfoResponse(data); err != nil {
			checkDecodeError(t, err)
		} else {
			if len(r.AAGUID) != 16 || len(r.Versions) == 0 {
				t.Fatalf("accepted invalid getInfo %+v", r)
			}
			checkRoundTrip(t, data, r, DecodeGetInfoResponse)
		}
	})
}

func FuzzParseAuthData(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAuthData(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		// Authenticator data has exactly one encoding.
		enc := a.Marshal()
		if !bytes.Equal(enc, data) {
			t.Fatalf("parsed %x, re-encoded as %x", data, enc)
		}
		again, err := ParseAuthData(enc)
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("re-parse gave %+v, %v; want %+v", again, err, a)
		}
		if (a.Attested != nil) != (a.Flags&FlagAT != 0) || (a.Extensions != nil) != (a.Flags&FlagED != 0) {
			t.Fatalf("flags %#x disagree with %+v", a.Flags, a)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		alg, pub, err := ParsePublicKey(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		// A COSE key has exactly one encoding.
		var enc []byte
		switch k := pub.(type) {
		case *ecdsa.PublicKey:
			if alg != AlgES256 {
				t.Fatalf("ECDSA key with alg %d", alg)
			}
			enc = mustCOSE(t, k)
		case *ecdh.PublicKey:
			if alg != AlgECDHESHKDF256 {
				t.Fatalf("ECDH key with alg %d", alg)
			}
			enc = mustCOSE(t, k)
		case ed25519.PublicKey:
			if alg != AlgEdDSA {
				t.Fatalf("Ed25519 key with alg %d", alg)
			}
			enc = mustCOSE(t, k)
		case *rsa.PublicKey:
			if alg != AlgRS256 {
				t.Fatalf("RSA key with alg %d", alg)
			}
			enc = coseRSA(k)
		default:
			t.Fatalf("unexpected key type %T", pub)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("parsed %x, re-encoded as %x", data, enc)
		}
		// Verifying garbage must fail cleanly, never panic.
		err = VerifySignature(alg, pub, data, data)
		if alg == AlgECDHESHKDF256 {
			if err == nil || errors.Is(err, ErrBadSignature) {
				t.Fatalf("verifying with a key-agreement key: %v", err)
			}
		} else if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("verifying garbage: %v", err)
		}
	})
}

func FuzzParseAPDU(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAPDU(data)
		if err != nil {
			if !errors.Is(err, SWWrongLength) {
				t.Fatalf("error %v does not wrap SWWrongLength", err)
			}
			return
		}
		if len(a.Data) > maxExtendedLc || a.Le < 0 || a.Le > maxLe || (a.Data != nil && len(a.Data) == 0) {
			t.Fatalf("out of bounds %+v", a)
		}
		enc := a.Marshal()
		if len(enc) > len(data)+3 {
			t.Fatalf("%d bytes re-encoded as %d", len(data), len(enc))
		}
		again, err := ParseAPDU(enc)
		if err != nil {
			t.Fatalf("parsing re-encoded %x: %v", enc, err)
		}
		if !reflect.DeepEqual(again, a) {
			t.Fatalf("round trip %+v, want %+v", again, a)
		}
		if enc2 := again.Marshal(); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding not stable: %x then %x", enc, enc2)
		}
	})
}

func FuzzParseU2FResponses(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		body, sw, err := SplitStatusWord(data)
		if err != nil {
			checkDecodeError(t, err)
		} else if !bytes.Equal(append(bytes.Clone(body), byte(sw>>8), byte(sw)), data) {
			t.Fatalf("split %x into %x and %v", data, body, sw)
		}
		// Try the whole input and the body alone: responses arrive both
		// ways, with and without the status word.
		for _, in := range [][]byte{data, body} {
			if r, err := ParseU2FRegisterResponse(in); err != nil {
				checkDecodeError(t, err)
			} else {
				if len(r.PublicKey) != 65 || len(r.KeyHandle) == 0 || len(r.Signature) > maxECDSASigLen {
					t.Fatalf("out of bounds %+v", r)
				}
				if enc := r.Marshal(); !bytes.Equal(enc, in) {
					t.Fatalf("parsed %x, re-encoded as %x", in, enc)
				}
			}
			if r, err := ParseU2FAuthenticateResponse(in); err != nil {
				checkDecodeError(t, err)
			} else if enc := r.Marshal(); !bytes.Equal(enc, in) {
				t.Fatalf("parsed %x, re-encoded as %x", in, enc)
			}
		}
	})
}

func BenchmarkDecodeMakeCredentialRequest(b *testing.B) {
	in := MustMarshal(sampleMakeCredentialRequest())
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := DecodeMakeCredentialRequest(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAuthData(b *testing.B) {
	in := sampleAuthData(b, true, true).Marshal()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseAuthData(in); err != nil {
			b.Fatal(err)
		}
	}
}
