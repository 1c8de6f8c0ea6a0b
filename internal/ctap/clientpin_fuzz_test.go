package ctap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// clientPINFuzzSeeds gives the fuzz targets of clientpin.go their valid and
// invalid seed inputs, kept apart from fuzzSeeds so that the two files can
// change independently. TestClientPINFuzzCorpus writes them to
// testdata/fuzz with -update-fuzz-corpus.
func clientPINFuzzSeeds(tb testing.TB) map[string][][]byte {
	tb.Helper()
	pin := MustMarshal(sampleClientPINRequest(tb))
	cm := MustMarshal(sampleCredMgmtRequest())
	cfg := MustMarshal(sampleConfigRequest(tb))
	lb := MustMarshal(sampleLargeBlobsSet())
	return map[string][][]byte{
		"FuzzDecodeClientPIN": {
			pin,
			MustMarshal(&ClientPINRequest{PinUvAuthProtocol: 1, SubCommand: ClientPINGetPINRetries}),
			MustMarshal(sampleClientPINResponse(tb)),
			MustMarshal(&HMACSecretInput{KeyAgreement: sampleKeyAgreement(tb), SaltEnc: hash32(1), SaltAuth: hash32(2), PinUvAuthProtocol: 2}),
			MustMarshal(map[int]any{2: 3, 3: []byte{1}}), // keyAgreement not a map
			pin[:len(pin)-1],
		},
		"FuzzDecodeCredMgmt": {
			cm,
			MustMarshal(&CredMgmtRequest{SubCommand: CredMgmtGetCredsMetadata, PinUvAuthProtocol: 2, PinUvAuthParam: hash32(1)}),
			MustMarshal(map[int]any{1: 4, 2: map[int]any{1: hash32(2)}, 3: 1, 4: hash32(3)[:16]}),
			MustMarshal(sampleCredMgmtResponse(tb)),
			MustMarshal(map[int]any{1: 5, 2: 25}),
			unhex(tb, "a2 01 06 02 a1 02 a1 62 69 64 41 00"), // descriptor without type
		},
		"FuzzDecodeConfig": {
			cfg,
			MustMarshal(&ConfigRequest{SubCommand: ConfigToggleAlwaysUv, PinUvAuthProtocol: 1, PinUvAuthParam: hash32(4)[:16]}),
			MustMarshal(map[int]any{1: 0xff, 2: map[int]any{1: 7}}),
			MustMarshal(map[int]any{1: 3, 2: map[int]any{2: []any{}}}),
			MustMarshal(map[int]any{1: 3, 2: []int{1}}),
			append(bytes.Clone(cfg), 0),
		},
		"FuzzDecodeLargeBlobs": {
			lb,
			MustMarshal(&LargeBlobsRequest{Get: uint64p(1024), Offset: 0}),
			MustMarshal(&LargeBlobsResponse{Config: InitialLargeBlobArray()}),
			InitialLargeBlobArray(),
			MustMarshal(map[int]any{1: 1, 2: []byte{}, 3: 0}), // both get and set
			MustMarshal(map[int]any{1: make([]byte, 16), 2: make([]byte, 12), 3: 3}),
		},
	}
}

func addClientPINSeeds(f *testing.F) {
	for _, s := range clientPINFuzzSeeds(f)[f.Name()] {
		f.Add(s)
	}
}

// TestClientPINFuzzCorpus checks that every fuzz target of this file has
// seed corpus files and, with -update-fuzz-corpus, rewrites the seed-*
// ones. Other files are inputs the fuzzer once failed on; they stay.
func TestClientPINFuzzCorpus(t *testing.T) {
	for name, inputs := range clientPINFuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", name)
		if *updateCorpus {
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
			t.Fatalf("%s: %v (run go test -run TestClientPINFuzzCorpus -update-fuzz-corpus)", name, err)
		}
		if len(entries) < len(inputs) {
			t.Errorf("%s: %d corpus files, want at least %d", name, len(entries), len(inputs))
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

// checkRawRoundTrip is checkRoundTrip for requests that keep their
// subCommandParams raw next to a decoded view. The raw bytes travel
// unchanged, so the view must decode identically from the re-encoding and
// the authenticated message must not change; the rest of the request gets
// checkRoundTrip's checks with the view cleared, since checkRoundTrip's
// normalisation assumes empty fields vanish, which raw bytes keep.
func checkRawRoundTrip[T any](t *testing.T, in []byte, got *T, decode func([]byte) (*T, error), view func(*T) any, clear func(*T), auth func(*T) []byte) {
	t.Helper()
	enc := MustMarshal(got)
	again, err := decode(enc)
	if err != nil {
		t.Fatalf("decoding re-encoded %x: %v", enc, err)
	}
	if !reflect.DeepEqual(view(got), view(again)) {
		t.Fatalf("decoded parameters changed:\n got %+v\nwant %+v", view(again), view(got))
	}
	if a, b := auth(got), auth(again); !bytes.Equal(a, b) {
		t.Fatalf("authenticated message changed: %x then %x", a, b)
	}
	strip := func(b []byte) (*T, error) {
		v, err := decode(b)
		if err == nil {
			clear(v)
		}
		return v, err
	}
	clear(got)
	checkRoundTrip(t, in, got, strip)
}

func FuzzDecodeClientPIN(f *testing.F) {
	addClientPINSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeClientPINRequest(data); err != nil {
			checkDecodeError(t, err)
		} else {
			if r.SubCommand == 0 || (r.KeyAgreement != nil && !isMap(r.KeyAgreement)) {
				t.Fatalf("accepted an invalid request %+v", r)
			}
			checkRoundTrip(t, data, r, DecodeClientPINRequest)
			if r.KeyAgreement != nil {
				if k, err := ParseKeyAgreement(r.KeyAgreement); err != nil {
					checkDecodeError(t, err)
				} else if enc, err := EncodeKeyAgreement(k); err != nil || !bytes.Equal(enc, r.KeyAgreement) {
					t.Fatalf("key agreement %x re-encoded as %x, %v", r.KeyAgreement, enc, err)
				}
			}
		}
		if r, err := DecodeClientPINResponse(data); err != nil {
			checkDecodeError(t, err)
		} else {
			checkRoundTrip(t, data, r, DecodeClientPINResponse)
		}
		if r, err := DecodeHMACSecretInput(data); err != nil {
			checkDecodeError(t, err)
		} else {
			if r.KeyAgreement == nil || r.SaltEnc == nil || r.SaltAuth == nil {
				t.Fatalf("accepted an invalid input %+v", r)
			}
			checkRoundTrip(t, data, r, DecodeHMACSecretInput)
		}
	})
}

func FuzzDecodeCredMgmt(f *testing.F) {
	addClientPINSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeCredMgmtRequest(data); err != nil {
			checkDecodeError(t, err)
		} else {
			if r.SubCommand == 0 || r.SubCommand > 0xff || (r.SubCommandParams == nil) != (r.Params == nil) {
				t.Fatalf("accepted an invalid request %+v", r)
			}
			if r.SubCommand == CredMgmtDeleteCredential && (r.Params == nil || r.Params.CredentialID == nil) {
				t.Fatalf("accepted deleteCredential without a credential %+v", r)
			}
			checkRawRoundTrip(t, data, r, DecodeCredMgmtRequest,
				func(r *CredMgmtRequest) any { return r.Params },
				func(r *CredMgmtRequest) { r.Params = nil },
				(*CredMgmtRequest).AuthMessage)
		}
		if r, err := DecodeCredMgmtResponse(data); err != nil {
			checkDecodeError(t, err)
		} else {
			checkRoundTrip(t, data, r, DecodeCredMgmtResponse)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	addClientPINSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeConfigRequest(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if r.SubCommand == 0 || r.SubCommand > 0xff || (r.MinPINLength != nil && r.SubCommand != ConfigSetMinPINLength) {
			t.Fatalf("accepted an invalid request %+v", r)
		}
		checkRawRoundTrip(t, data, r, DecodeConfigRequest,
			func(r *ConfigRequest) any { return r.MinPINLength },
			func(r *ConfigRequest) { r.MinPINLength = nil },
			(*ConfigRequest).AuthMessage)
	})
}

func FuzzDecodeLargeBlobs(f *testing.F) {
	addClientPINSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeLargeBlobsRequest(data); err != nil {
			checkDecodeError(t, err)
		} else {
			if (r.Get == nil) == (r.Set == nil) || r.Offset > 0xffffffff {
				t.Fatalf("accepted an invalid request %+v", r)
			}
			checkRoundTrip(t, data, r, DecodeLargeBlobsRequest)
			if m := r.AuthMessage(); len(m) != 70 {
				t.Fatalf("auth message of %d bytes", len(m))
			}
		}
		if r, err := DecodeLargeBlobsResponse(data); err != nil {
			checkDecodeError(t, err)
		} else {
			checkRoundTrip(t, data, r, DecodeLargeBlobsResponse)
		}
		if entries, err := DecodeLargeBlobArray(data); err != nil {
			if !errors.Is(err, StatusIntegrityFailure) {
				checkDecodeError(t, err)
			}
		} else {
			// The entries are kept raw, so the array serializes back to
			// exactly the input.
			if again := SerializeLargeBlobArray(entries); !bytes.Equal(again, data) {
				t.Fatalf("large-blob array %x re-serialized as %x", data, again)
			}
			for _, e := range entries {
				if b, err := DecodeLargeBlob(e); err != nil {
					checkDecodeError(t, err)
				} else {
					checkRoundTrip(t, e, b, DecodeLargeBlob)
				}
			}
		}
	})
}
