package virtual

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"
)

// testRand returns a deterministic random source, so fuzz seeds and
// expected IDs are the same on every run.
func testRand(seed uint64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return mrand.NewChaCha8(s)
}

// testWrapSecret is the fixed secret of the wrapper the tests and the fuzz
// corpus use.
var testWrapSecret = bytes.Repeat([]byte{0x5a}, wrapSecretLen)

var (
	testRPHash  = sha256.Sum256([]byte("example.com"))
	otherRPHash = sha256.Sum256([]byte("evil.example"))
)

func testWrapper(t testing.TB, secret []byte) *keyWrapper {
	t.Helper()
	w, err := newKeyWrapper(secret)
	if err != nil {
		t.Fatalf("newKeyWrapper: %v", err)
	}
	return w
}

var testAlgs = []struct {
	name string
	alg  int64
}{
	{"ES256", algES256},
	{"EdDSA", algEdDSA},
}

func TestNewKeyWrapperSecretLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if _, err := newKeyWrapper(make([]byte, n)); err == nil {
				t.Errorf("newKeyWrapper accepted a %d-byte secret", n)
			}
		})
	}
}

func TestWrapRoundTrip(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	for _, tt := range testAlgs {
		t.Run(tt.name, func(t *testing.T) {
			signer, raw, err := newPrivateKey(nil, tt.alg)
			if err != nil {
				t.Fatalf("newPrivateKey: %v", err)
			}
			id, err := w.wrap(nil, testRPHash, tt.alg, raw)
			if err != nil {
				t.Fatalf("wrap: %v", err)
			}
			if len(id) != wrappedIDLen || len(id) > 128 {
				t.Errorf("ID is %d bytes, want %d (at most 128)", len(id), wrappedIDLen)
			}
			if id[0] != wrapVersion {
				t.Errorf("version byte %#x, want %#x", id[0], wrapVersion)
			}
			if bytes.Contains(id, raw) {
				t.Error("ID contains the raw private key")
			}
			alg, priv, ok := w.unwrap(testRPHash, id)
			if !ok {
				t.Fatal("unwrap rejected its own ID")
			}
			if alg != tt.alg || !bytes.Equal(priv, raw) {
				t.Fatalf("unwrap = %d, %x; want %d, %x", alg, priv, tt.alg, raw)
			}
			// The recovered key signs for the original public key.
			got, err := signerFromRaw(alg, priv)
			if err != nil {
				t.Fatalf("signerFromRaw: %v", err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if !got.Public().(equaler).Equal(signer.Public()) {
				t.Error("unwrapped key has another public key")
			}
			// A second wrap of the same key uses a fresh nonce.
			id2, err := w.wrap(nil, testRPHash, tt.alg, raw)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(id, id2) {
				t.Error("two wraps of one key gave the same ID")
			}
		})
	}
}

func TestUnwrapRejects(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	other := testWrapper(t, bytes.Repeat([]byte{0xa5}, wrapSecretLen))
	_, raw, err := newPrivateKey(testRand(1), algES256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.wrap(testRand(2), testRPHash, algES256, raw)
	if err != nil {
		t.Fatal(err)
	}
	otherID, err := other.wrap(testRand(2), testRPHash, algES256, raw)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 200)
	testRand(3).Read(junk)
	badVersion := bytes.Clone(id)
	badVersion[0] = 0x02

	tests := []struct {
		name string
		rp   [32]byte
		id   []byte
	}{
		{"wrong RP", otherRPHash, id},
		{"other secret", testRPHash, otherID},
		{"nil", testRPHash, nil},
		{"empty", testRPHash, []byte{}},
		{"version only", testRPHash, []byte{wrapVersion}},
		{"one short", testRPHash, id[:len(id)-1]},
		{"one long", testRPHash, append(bytes.Clone(id), 0)},
		{"doubled", testRPHash, append(bytes.Clone(id), id...)},
		{"version 2", testRPHash, badVersion},
		{"junk of ID length", testRPHash, junk[:wrappedIDLen]},
		{"junk with version byte", testRPHash, append([]byte{wrapVersion}, junk[:wrappedIDLen-1]...)},
		{"long junk", testRPHash, junk},
		{"zeros", testRPHash, make([]byte, wrappedIDLen)},
	}
	for n := range wrappedIDLen {
		tests = append(tests, struct {
			name string
			rp   [32]byte
			id   []byte
		}{fmt.Sprintf("truncated to %d", n), testRPHash, id[:n]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := bytes.Clone(tt.id)
			alg, priv, ok := w.unwrap(tt.rp, tt.id)
			if ok || alg != 0 || priv != nil {
				t.Errorf("unwrap = %d, %x, %v; want 0, nil, false", alg, priv, ok)
			}
			if !bytes.Equal(before, tt.id) {
				t.Error("unwrap modified its input")
			}
		})
	}
}

func TestUnwrapBitFlips(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	for _, tt := range testAlgs {
		t.Run(tt.name, func(t *testing.T) {
			_, raw, err := newPrivateKey(nil, tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			id, err := w.wrap(nil, testRPHash, tt.alg, raw)
			if err != nil {
				t.Fatal(err)
			}
			for bit := range len(id) * 8 {
				flipped := bytes.Clone(id)
				flipped[bit/8] ^= 1 << (bit % 8)
				if _, _, ok := w.unwrap(testRPHash, flipped); ok {
					t.Errorf("unwrap accepted the ID with bit %d flipped", bit)
				}
			}
			// And each bit of the RP ID hash.
			for bit := range 32 * 8 {
				rp := testRPHash
				rp[bit/8] ^= 1 << (bit % 8)
				if _, _, ok := w.unwrap(rp, id); ok {
					t.Errorf("unwrap accepted RP hash with bit %d flipped", bit)
				}
			}
		})
	}
}

func TestWrapRejectsBadKeys(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	order := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	tests := []struct {
		name string
		alg  int64
		priv []byte
	}{
		{"RS256", -257, make([]byte, 32)},
		{"alg 0", 0, make([]byte, 32)},
		{"alg that fits a byte", -35, make([]byte, 32)},
		{"ES256 short", algES256, make([]byte, 31)},
		{"ES256 long", algES256, make([]byte, 33)},
		{"ES256 zero scalar", algES256, make([]byte, 32)},
		{"ES256 scalar equal to order", algES256, order},
		{"EdDSA short", algEdDSA, make([]byte, 31)},
		{"EdDSA expanded key", algEdDSA, make([]byte, 64)},
		{"nil", algEdDSA, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := w.wrap(nil, testRPHash, tt.alg, tt.priv); err == nil {
				t.Errorf("wrap = %x, want an error", id)
			}
		})
	}
}

func TestWrapRandError(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	if _, err := w.wrap(errReader{}, testRPHash, algEdDSA, make([]byte, 32)); err == nil {
		t.Error("wrap succeeded without a nonce")
	}
}

func TestKeyWrapperConcurrent(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			alg := testAlgs[i%2].alg
			for range 50 {
				_, raw, err := newPrivateKey(nil, alg)
				if err != nil {
					t.Error(err)
					return
				}
				id, err := w.wrap(nil, testRPHash, alg, raw)
				if err != nil {
					t.Error(err)
					return
				}
				if _, got, ok := w.unwrap(testRPHash, id); !ok || !bytes.Equal(got, raw) {
					t.Error("concurrent round trip failed")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewPrivateKey(t *testing.T) {
	for _, tt := range testAlgs {
		t.Run(tt.name, func(t *testing.T) {
			s1, raw1, err := newPrivateKey(testRand(9), tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			_, raw2, err := newPrivateKey(testRand(9), tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			_, raw3, err := newPrivateKey(testRand(10), tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw1) != rawKeyLen {
				t.Errorf("raw key is %d bytes, want %d", len(raw1), rawKeyLen)
			}
			if !bytes.Equal(raw1, raw2) {
				t.Error("same seed gave different keys")
			}
			if bytes.Equal(raw1, raw3) {
				t.Error("different seeds gave the same key")
			}
			s, err := signerFromRaw(tt.alg, raw1)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if !s.Public().(equaler).Equal(s1.Public()) {
				t.Error("signerFromRaw(raw) has another public key")
			}
		})
	}
	t.Run("unsupported", func(t *testing.T) {
		if _, _, err := newPrivateKey(nil, -257); err == nil {
			t.Error("newPrivateKey made an RS256 key")
		}
	})
	t.Run("broken rand", func(t *testing.T) {
		for _, tt := range testAlgs {
			if _, _, err := newPrivateKey(errReader{}, tt.alg); err == nil {
				t.Errorf("%s: newPrivateKey succeeded without randomness", tt.name)
			}
		}
	})
}

func TestSign(t *testing.T) {
	msg := []byte("authenticator data || client data hash")
	ec, _, err := newPrivateKey(nil, algES256)
	if err != nil {
		t.Fatal(err)
	}
	ed, _, err := newPrivateKey(nil, algEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ES256", func(t *testing.T) {
		sig, err := sign(ec, algES256, msg)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(ec.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Error("ES256 signature does not verify as ASN.1 over SHA-256(msg)")
		}
	})
	t.Run("EdDSA", func(t *testing.T) {
		sig, err := sign(ed, algEdDSA, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(ed.Public().(ed25519.PublicKey), msg, sig) {
			t.Error("EdDSA signature does not verify over msg")
		}
	})

	bad := []struct {
		name   string
		signer crypto.Signer
		alg    int64
	}{
		{"ES256 with Ed25519 key", ed, algES256},
		{"EdDSA with P-256 key", ec, algEdDSA},
		{"ES256 with P-384 key", p384, algES256},
		{"unsupported alg", ec, -257},
		{"nil signer", nil, algES256},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if sig, err := sign(tt.signer, tt.alg, msg); err == nil {
				t.Errorf("sign = %x, want an error", sig)
			}
		})
	}
}

func TestSignerFromRawRejects(t *testing.T) {
	tests := []struct {
		name string
		alg  int64
		priv []byte
	}{
		{"unknown alg", 1, make([]byte, 32)},
		{"ES256 empty", algES256, nil},
		{"ES256 all ones", algES256, bytes.Repeat([]byte{0xff}, 32)},
		{"EdDSA 33 bytes", algEdDSA, make([]byte, 33)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := signerFromRaw(tt.alg, tt.priv); err == nil {
				t.Error("signerFromRaw succeeded")
			}
		})
	}
}

// fuzzKnownIDs returns credential IDs made by the fuzz wrapper with fixed
// randomness, so testdata/fuzz/FuzzUnwrap can hold exact valid IDs and their
// mutations.
func fuzzKnownIDs(t testing.TB, w *keyWrapper) map[string]struct {
	alg  int64
	priv []byte
} {
	t.Helper()
	known := map[string]struct {
		alg  int64
		priv []byte
	}{}
	r := testRand(0xf1d0)
	for _, tt := range testAlgs {
		_, raw, err := newPrivateKey(r, tt.alg)
		if err != nil {
			t.Fatal(err)
		}
		id, err := w.wrap(r, testRPHash, tt.alg, raw)
		if err != nil {
			t.Fatal(err)
		}
		known[string(id)] = struct {
			alg  int64
			priv []byte
		}{tt.alg, raw}
	}
	return known
}

// FuzzUnwrap checks that no byte string unwraps unless it is exactly an ID
// that wrap made, and that none unwraps for another relying party.
func FuzzUnwrap(f *testing.F) {
	w := testWrapper(f, testWrapSecret)
	known := fuzzKnownIDs(f, w)
	for id := range known {
		f.Add([]byte(id))
	}
	f.Fuzz(func(t *testing.T, id []byte) {
		before := bytes.Clone(id)
		alg, priv, ok := w.unwrap(testRPHash, id)
		if !bytes.Equal(before, id) {
			t.Fatal("unwrap modified its input")
		}
		want, isKnown := known[string(id)]
		if ok != isKnown {
			t.Fatalf("unwrap(%x) ok = %v, want %v", id, ok, isKnown)
		}
		if ok && (alg != want.alg || !bytes.Equal(priv, want.priv)) {
			t.Fatalf("unwrap(%x) = %d, %x; want %d, %x", id, alg, priv, want.alg, want.priv)
		}
		if !ok && (alg != 0 || priv != nil) {
			t.Fatalf("failed unwrap returned %d, %x", alg, priv)
		}
		if _, _, ok := w.unwrap(otherRPHash, id); ok {
			t.Fatalf("unwrap(%x) succeeded for another RP", id)
		}
	})
}

// TestWrapExt: a credential ID carries credProtect and hmac-secret, and
// the hmac-secret keys derived from it are stable per ID and secret.
func TestWrapExt(t *testing.T) {
	w := testWrapper(t, testWrapSecret)
	_, priv, err := newPrivateKey(testRand(7), algES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []credExt{{protect: 1}, {protect: 2}, {protect: 3}, {protect: 1, hmacSecret: true}, {protect: 3, hmacSecret: true}} {
		t.Run(fmt.Sprintf("%+v", ext), func(t *testing.T) {
			id, err := w.wrapExt(testRand(1), testRPHash, algES256, priv, ext)
			if err != nil {
				t.Fatal(err)
			}
			wantLen := wrappedIDLen2
			if ext.protect == 1 && !ext.hmacSecret {
				wantLen = wrappedIDLen // nothing to carry: the old format
			}
			if len(id) != wantLen {
				t.Errorf("ID of %d bytes, want %d", len(id), wantLen)
			}
			alg, got, gotExt, ok := w.unwrapExt(testRPHash, id)
			if !ok || alg != algES256 || !bytes.Equal(got, priv) || gotExt != ext {
				t.Errorf("unwrapExt = %d, %v, %+v, %v", alg, bytes.Equal(got, priv), gotExt, ok)
			}
			if _, _, _, ok := w.unwrapExt(otherRPHash, id); ok {
				t.Error("unwrapped for another RP")
			}
			// The version byte is authenticated: a version 2 ID cut or
			// relabelled is no ID.
			relabelled := bytes.Clone(id)
			relabelled[0] ^= 3
			if _, _, _, ok := w.unwrapExt(testRPHash, relabelled); ok {
				t.Error("relabelled ID unwrapped")
			}
		})
	}
	id1, _ := w.wrapExt(testRand(1), testRPHash, algES256, priv, credExt{protect: 1, hmacSecret: true})
	id2, _ := w.wrapExt(testRand(2), testRPHash, algES256, priv, credExt{protect: 1, hmacSecret: true})
	a, b := w.credRandom(id1, true), w.credRandom(id1, false)
	switch {
	case len(a) != 32 || !bytes.Equal(a, w.credRandom(id1, true)):
		t.Error("CredRandom not stable")
	case bytes.Equal(a, b):
		t.Error("CredRandomWithUV equals CredRandomWithoutUV")
	case bytes.Equal(a, w.credRandom(id2, true)):
		t.Error("two credentials share CredRandom")
	case bytes.Equal(a, testWrapper(t, bytes.Repeat([]byte{1}, 32)).credRandom(id1, true)):
		t.Error("CredRandom does not depend on the secret")
	}
}
