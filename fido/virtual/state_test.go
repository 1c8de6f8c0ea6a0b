package virtual

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

var testAAGUID = [16]byte([]byte("fidokit-virtual!"))

// testState returns a new state with one resident credential per
// algorithm, so every field has a value to round-trip.
func testState(t *testing.T) *state {
	t.Helper()
	s, err := newState(nil, testAAGUID, nil)
	if err != nil {
		t.Fatalf("newState: %v", err)
	}
	s.Counter = 41
	for i, tt := range testAlgs {
		_, raw, err := newPrivateKey(nil, tt.alg)
		if err != nil {
			t.Fatal(err)
		}
		s.Credentials = append(s.Credentials, residentCredential{
			ID:              []byte{byte(i), 1, 2, 3},
			RPID:            "example.com",
			RPName:          "Example",
			UserID:          []byte{0xde, 0xad, byte(i)},
			UserName:        "alice@example.com",
			UserDisplayName: "Alice Ä. Example",
			Alg:             tt.alg,
			PrivateKey:      raw,
			// UTC() also drops the monotonic reading, which JSON cannot keep.
			Created: time.Now().UTC(),
		})
	}
	return s
}

// mustLoad loads path and fails the test on error.
func mustLoad(t *testing.T, path string) *state {
	t.Helper()
	s, err := loadState(path)
	if err != nil {
		t.Fatalf("loadState: %v", err)
	}
	return s
}

// checkMode checks that path is readable by its owner only.
func checkMode(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return // no Unix permission bits
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, got)
	}
}

// checkNoTemp checks that dir holds only want, no temporary files.
func checkNoTemp(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func TestNewState(t *testing.T) {
	callerCA := testCA(t)
	tests := []struct {
		name      string
		ca        *AttestationCA
		wantCAKey bool
	}{
		{"own CA", nil, true},
		{"caller CA", callerCA, true},
		{"caller CA with unexportable key", &AttestationCA{Certificate: callerCA.Certificate, Key: signerOnly{callerCA.Key}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newState(nil, testAAGUID, tt.ca)
			if err != nil {
				t.Fatalf("newState: %v", err)
			}
			if err := s.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if s.Version != stateVersion || s.AAGUID != testAAGUID || s.Counter != 0 || len(s.Credentials) != 0 {
				t.Errorf("state = version %d, aaguid %x, counter %d, %d credentials", s.Version, s.AAGUID, s.Counter, len(s.Credentials))
			}
			if len(s.WrapSecret) != 32 {
				t.Errorf("wrap secret is %d bytes", len(s.WrapSecret))
			}
			if _, err := newKeyWrapper(s.WrapSecret); err != nil {
				t.Error(err)
			}
			if got := len(s.CAKey) != 0; got != tt.wantCAKey {
				t.Errorf("CA key stored = %v, want %v", got, tt.wantCAKey)
			}
			caCert, err := x509.ParseCertificate(s.CACert)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ca != nil && !caCert.Equal(tt.ca.Certificate) {
				t.Error("state does not hold the caller's CA")
			}
			ca := &AttestationCA{Certificate: caCert}
			batch := verifyChain(t, s.BatchCert, ca)
			u2f := verifyChain(t, s.U2FCert, ca)
			bk, err := s.batchKey()
			if err != nil || !bk.PublicKey.Equal(batch.PublicKey) {
				t.Errorf("batchKey = %v, does not match batch certificate", err)
			}
			uk, err := s.u2fKey()
			if err != nil || !uk.PublicKey.Equal(u2f.PublicKey) {
				t.Errorf("u2fKey = %v, does not match U2F certificate", err)
			}
		})
	}
}

func TestNewStateBadRand(t *testing.T) {
	if _, err := newState(errReader{}, testAAGUID, nil); err == nil {
		t.Error("newState succeeded without randomness")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	want := testState(t)
	if err := want.save(path); err != nil {
		t.Fatalf("save: %v", err)
	}
	checkMode(t, path)
	checkNoTemp(t, dir, "key.json")
	if got := mustLoad(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("loaded state differs from saved:\n got %+v\nwant %+v", got, want)
	}

	t.Run("overwrite", func(t *testing.T) {
		want.Counter++
		want.Credentials = want.Credentials[:1]
		if err := want.save(path); err != nil {
			t.Fatalf("save: %v", err)
		}
		if got := mustLoad(t, path); !reflect.DeepEqual(got, want) {
			t.Errorf("loaded state differs from saved:\n got %+v\nwant %+v", got, want)
		}
		checkNoTemp(t, dir, "key.json")
	})

	t.Run("empty and nil slices", func(t *testing.T) {
		for _, creds := range [][]residentCredential{nil, {}} {
			want.Credentials = creds
			if err := want.save(path); err != nil {
				t.Fatal(err)
			}
			if got := mustLoad(t, path); !reflect.DeepEqual(got, want) {
				t.Errorf("credentials %#v loaded as %#v", creds, got.Credentials)
			}
		}
	})

	t.Run("tightens mode of existing file", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no Unix permission bits")
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := want.save(path); err != nil {
			t.Fatal(err)
		}
		checkMode(t, path)
	})
}

func TestLoadStateMissing(t *testing.T) {
	_, err := loadState(filepath.Join(t.TempDir(), "absent.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadState = %v, want an error wrapping fs.ErrNotExist", err)
	}
	var se *StateError
	if errors.As(err, &se) {
		t.Errorf("missing file gave a StateError: %v", err)
	}
}

func TestLoadStateCorrupt(t *testing.T) {
	good := testState(t)
	goodJSON, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	// edit returns good's JSON after f changes a copy of it.
	edit := func(f func(s *state)) []byte {
		var s state
		if err := json.Unmarshal(goodJSON, &s); err != nil {
			t.Fatal(err)
		}
		f(&s)
		b, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string // in the error text
	}{
		{"empty", nil, "unexpected end"},
		{"garbage", []byte("\x00\x01not json"), "invalid character"},
		{"truncated", goodJSON[:len(goodJSON)/2], "unexpected end"},
		{"trailing data", append(bytes.Clone(goodJSON), "{}"...), "invalid character"},
		{"JSON array", []byte("[]"), "cannot unmarshal"},
		{"JSON null", []byte("null"), "version 0"},
		{"wrong type", []byte(`{"Counter": "many"}`), "cannot unmarshal"},
		{"negative counter", []byte(`{"Counter": -1}`), "cannot unmarshal"},
		{"future version", edit(func(s *state) { s.Version = 3 }), "version 3"},
		{"short PIN hash", edit(func(s *state) { s.PINHash = make([]byte, 15) }), "PIN hash"},
		{"PIN retries over 8", edit(func(s *state) { s.PINRetries = 9 }), "PIN retries"},
		{"negative UV retries", edit(func(s *state) { s.UVRetries = -1 }), "UV retries"},
		{"minimum PIN length 3", edit(func(s *state) { s.MinPINLength = 3 }), "minimum PIN length"},
		{"corrupt large-blob array", edit(func(s *state) { s.LargeBlobs = []byte{0x80, 1, 2} }), "large-blob array"},
		{"credProtect 4", edit(func(s *state) { s.Credentials[0].CredProtect = 4 }), "credProtect"},
		{"one hmac-secret key", edit(func(s *state) { s.Credentials[0].CredRandomWithUV = make([]byte, 32) }), "hmac-secret"},
		{"short largeBlobKey", edit(func(s *state) { s.Credentials[0].LargeBlobKey = make([]byte, 31) }), "largeBlobKey"},
		{"short wrap secret", edit(func(s *state) { s.WrapSecret = s.WrapSecret[:16] }), "wrap secret"},
		{"bad CA certificate", edit(func(s *state) { s.CACert = []byte{0x30, 0x00} }), "attestation CA certificate"},
		{"CA key of another cert", edit(func(s *state) { s.CAKey = s.BatchKey }), "attestation CA key does not match"},
		{"bad batch key", edit(func(s *state) { s.BatchKey = []byte("key") }), "batch key"},
		{"swapped keys", edit(func(s *state) { s.BatchKey, s.U2FKey = s.U2FKey, s.BatchKey }), "does not match"},
		{"missing U2F cert", edit(func(s *state) { s.U2FCert = nil }), "U2F certificate"},
		{"other AAGUID", edit(func(s *state) { s.AAGUID[0] ^= 1 }), "AAGUID"},
		{"credential without ID", edit(func(s *state) { s.Credentials[0].ID = nil }), "credential 0"},
		{"credential bad alg", edit(func(s *state) { s.Credentials[1].Alg = -257 }), "credential 1"},
		{"credential short key", edit(func(s *state) { s.Credentials[0].PrivateKey = []byte{1} }), "credential 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := loadState(path)
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("loadState = %v, %v; want a *StateError", s, err)
			}
			if se.Path != path {
				t.Errorf("StateError.Path = %q, want %q", se.Path, path)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "corrupt state file") {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "key.json")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		// Sparse where the file system allows; loadState stops reading
		// one byte past the limit.
		if err := f.Truncate(maxStateFileSize + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var se *StateError
		if _, err := loadState(path); !errors.As(err, &se) {
			t.Errorf("loadState = %v, want a *StateError", err)
		}
	})
}

// errCrash stands in for the process dying.
var errCrash = errors.New("simulated crash")

func TestSaveCrash(t *testing.T) {
	old := testState(t)
	next := testState(t)
	next.Counter = 1000
	nextJSON, err := json.MarshalIndent(next, "", "\t")
	if err != nil {
		t.Fatal(err)
	}

	// setup saves old to a fresh directory and returns the path.
	setup := func(t *testing.T) (dir, path string) {
		t.Helper()
		dir = t.TempDir()
		path = filepath.Join(dir, "key.json")
		if err := old.save(path); err != nil {
			t.Fatal(err)
		}
		return dir, path
	}

	t.Run("partial temp files left behind", func(t *testing.T) {
		// What a crash before the rename leaves: temporary files holding
		// part of the new state, or garbage.
		dir, path := setup(t)
		for name, data := range map[string][]byte{
			".key.json.tmp-1": nextJSON[:len(nextJSON)/3],
			".key.json.tmp-2": []byte("\x00\x00\x00garbage"),
			".key.json.tmp-3": nil,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustLoad(t, path); !reflect.DeepEqual(got, old) {
			t.Error("leftover temporary files changed the loaded state")
		}
		// The next save is not disturbed by them either.
		if err := next.save(path); err != nil {
			t.Fatal(err)
		}
		if got := mustLoad(t, path); !reflect.DeepEqual(got, next) {
			t.Error("save after a crash did not take effect")
		}
	})

	t.Run("crash before rename", func(t *testing.T) {
		dir, path := setup(t)
		var sawTemp string
		err := writeFileAtomic(path, nextJSON, func(tmp string) error {
			sawTemp = tmp
			if filepath.Dir(tmp) != dir {
				t.Errorf("temporary file %s is not beside %s", tmp, path)
			}
			checkMode(t, tmp)
			// Scribble on the temporary file, then die before the rename.
			if err := os.WriteFile(tmp, []byte("{\"Version\": 1, torn"), 0o600); err != nil {
				t.Fatal(err)
			}
			return errCrash
		})
		if !errors.Is(err, errCrash) {
			t.Fatalf("writeFileAtomic = %v, want errCrash", err)
		}
		if sawTemp == "" {
			t.Fatal("hook never ran")
		}
		if got := mustLoad(t, path); !reflect.DeepEqual(got, old) {
			t.Error("an interrupted save changed the loaded state")
		}
		// A failed save cleans up after itself.
		checkNoTemp(t, dir, "key.json")
	})

	t.Run("unwritable destination", func(t *testing.T) {
		_, path := setup(t)
		missing := filepath.Join(filepath.Dir(path), "no-such-dir", "key.json")
		if err := next.save(missing); err == nil {
			t.Error("save into a missing directory succeeded")
		}
		if got := mustLoad(t, path); !reflect.DeepEqual(got, old) {
			t.Error("a failed save elsewhere changed the state")
		}
	})
}

func TestStateErrorUnwrap(t *testing.T) {
	inner := errors.New("bad")
	err := error(&StateError{Path: "/x", Err: inner})
	if !errors.Is(err, inner) {
		t.Error("StateError does not unwrap to its cause")
	}
	if got, want := err.Error(), "virtual: corrupt state file /x: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestStateAttestationKeysRejectBad(t *testing.T) {
	_, edKey, err := newPrivateKey(nil, algEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	edPKCS8, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(edKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key")},
		{"Ed25519", edPKCS8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &state{BatchKey: tt.der, U2FKey: tt.der}
			if _, err := s.batchKey(); err == nil {
				t.Error("batchKey succeeded")
			}
			if _, err := s.u2fKey(); err == nil {
				t.Error("u2fKey succeeded")
			}
		})
	}
}

func TestNewStateIncompleteCA(t *testing.T) {
	ca := testCA(t)
	for name, bad := range map[string]*AttestationCA{
		"no key":         {Certificate: ca.Certificate},
		"no certificate": {Key: ca.Key},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := newState(nil, testAAGUID, bad); err == nil {
				t.Error("newState succeeded")
			}
		})
	}
}

// TestStateMigration loads a version 1 file, from before PIN/UV support,
// as a key without a PIN and with the Config's settings.
func TestStateMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	s := testState(t)
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"PINRetries", "UVRetries", "AlwaysUV", "MinPINLength"} {
		delete(m, f)
	}
	m["Version"] = 1
	data, _ = json.Marshal(m)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, path)
	if got.Version != 2 || got.PINRetries != 8 || got.UVRetries != 25 || got.MinPINLength != 4 || got.PINHash != nil {
		t.Errorf("migrated state %+v", got)
	}
	k := newTestKey(t, &Config{StatePath: path, MinPINLength: 6, MaxUVRetries: 5, AlwaysUV: true})
	if i := info(t, k); i.MinPINLength != 6 || !i.Options["alwaysUv"] || k.UVRetries() != 5 || len(k.Credentials()) != len(s.Credentials) {
		t.Errorf("migrated key: minPINLength %d, options %v, UV retries %d", i.MinPINLength, i.Options, k.UVRetries())
	}
}
