package virtual

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
)

func withExt[R *ctap.MakeCredentialRequest | *ctap.GetAssertionRequest](r R, kv ...any) R {
	m := map[string]cbor.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		if raw, ok := kv[i+1].(cbor.RawMessage); ok {
			m[kv[i].(string)] = raw
		} else {
			m[kv[i].(string)] = ctap.MustMarshal(kv[i+1])
		}
	}
	switch r := any(r).(type) {
	case *ctap.MakeCredentialRequest:
		r.Extensions = m
	case *ctap.GetAssertionRequest:
		r.Extensions = m
	}
	return r
}

// TestCredProtect: level 2 hides a credential from discovery without UV,
// level 3 needs UV even with an allowList (CTAP 2.1 §12.1).
func TestCredProtect(t *testing.T) {
	k := newTestKey(t, &Config{PIN: "1234"})
	mcTok := func() []byte { return pinToken(t, k, 2, "1234", 0x01, "") }
	gaTok := func() []byte { return pinToken(t, k, 2, "1234", 0x02, "") }
	ids := map[string][]byte{}
	for _, c := range []struct {
		user  string
		rk    bool
		level int
	}{{"one", true, 1}, {"two", true, 2}, {"three", true, 3}, {"nr3", false, 3}, {"nr2", false, 2}} {
		resp, ad := makeCredential(t, k, withToken(2, mcTok(), withExt(mcRequest(c.user, c.rk), "credProtect", c.level)))
		out, err := ctap.DecodeMakeCredentialExtensionOutputs(ad.Extensions)
		if err != nil || out.CredProtect != uint64(c.level) {
			t.Fatalf("%s: outputs %+v %v", c.user, out, err)
		}
		ids[c.user] = ad.Attested.CredentialID
		_ = resp
	}
	if n := len(ids["nr3"]); n != wrappedIDLen2 {
		t.Errorf("non-discoverable credProtect ID is %d bytes", n)
	}
	users := func(tok []byte) []string {
		t.Helper()
		r := gaRequest()
		if tok != nil {
			withToken(2, tok, r)
		}
		resp, _ := getAssertion(t, k, ctap.CmdGetAssertion, r)
		got := []string{string(resp.User.ID)}
		for range resp.NumberOfCredentials - 1 {
			next, _ := getAssertion(t, k, ctap.CmdGetNextAssertion, nil)
			got = append(got, string(next.User.ID))
		}
		return got
	}
	if got := users(nil); len(got) != 1 || got[0] != "one" {
		t.Errorf("discoverable without UV: %v", got)
	}
	if got := users(gaTok()); len(got) != 3 {
		t.Errorf("discoverable with UV: %v", got)
	}
	for _, tt := range []struct {
		user string
		uv   bool
		want ctap.Status
	}{
		{"two", false, ctap.StatusOK}, {"three", false, ctap.StatusNoCredentials}, {"three", true, ctap.StatusOK},
		{"nr2", false, ctap.StatusOK}, {"nr3", false, ctap.StatusNoCredentials}, {"nr3", true, ctap.StatusOK},
	} {
		r := gaRequest(ids[tt.user])
		if tt.uv {
			withToken(2, gaTok(), r)
		}
		if s, _ := do(t, k, ctap.CmdGetAssertion, r); s != tt.want {
			t.Errorf("allowList %s, UV %v: %v, want %v", tt.user, tt.uv, s, tt.want)
		}
	}
	// excludeList: a level 3 credential is not there to someone who did
	// not verify.
	r := mcRequest("new", false)
	r.ExcludeList = []ctap.CredentialDescriptor{{Type: "public-key", ID: ids["nr3"]}}
	if s, _ := do(t, k, ctap.CmdMakeCredential, r); s != ctap.StatusOK {
		t.Errorf("excludeList with a level 3 credential, no UV: %v", s)
	}
	if s, _ := do(t, k, ctap.CmdMakeCredential, withToken(2, mcTok(), r)); s != ctap.StatusCredentialExcluded {
		t.Errorf("excludeList with a level 3 credential and UV: %v", s)
	}
	// U2F cannot verify users.
	if got := k.handleMsg(t.Context(), authenticateAPDU(ctap.U2FEnforceUP, cdh, testApp, ids["nr3"])); !bytes.Equal(got, []byte{0x6A, 0x80}) {
		t.Errorf("U2F with a level 3 credential: %x", got)
	}
	for _, c := range k.Credentials() {
		if want := map[string]int{"one": 1, "two": 2, "three": 3}[string(c.UserID)]; c.CredProtect != want {
			t.Errorf("Credentials(): %s has credProtect %d", c.UserID, c.CredProtect)
		}
	}
}

// hmacInput builds an hmac-secret input for salts under a fresh key
// agreement, and returns the platform to decrypt the output with.
func hmacInput(t *testing.T, k *Key, v uint64, salts []byte) (*platform, cbor.RawMessage) {
	t.Helper()
	p := agree(t, k, v)
	enc := p.encrypt(salts)
	in := map[int]any{1: p.key, 2: enc, 3: p.authenticate(enc)}
	if v != 1 {
		in[4] = v
	}
	return p, ctap.MustMarshal(in)
}

// TestHMACSecret checks hmac-secret outputs against HMAC-SHA-256 computed
// here from the credential's CredRandom, and their stability.
func TestHMACSecret(t *testing.T) {
	salt1, salt2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	hm := func(key, msg []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		return m.Sum(nil)
	}
	for _, v := range protocols {
		t.Run(protoName(v), func(t *testing.T) {
			k := newTestKey(t, &Config{PIN: "1234"})
			_, ad := makeCredential(t, k, withToken(v, pinToken(t, k, v, "1234", 0x01, ""), withExt(mcRequest("rk", true), "hmac-secret", true)))
			out, _ := ctap.DecodeMakeCredentialExtensionOutputs(ad.Extensions)
			if !out.HMACSecret {
				t.Fatalf("makeCredential outputs %+v", out)
			}
			rkID := ad.Attested.CredentialID
			_, ad = makeCredential(t, k, withExt(mcRequest("nr", false), "hmac-secret", true))
			nrID := ad.Attested.CredentialID
			eval := func(id, salts []byte, uv bool) []byte {
				t.Helper()
				p, in := hmacInput(t, k, v, salts)
				r := withExt(gaRequest(id), "hmac-secret", in)
				if uv {
					withToken(v, pinToken(t, k, v, "1234", 0x02, ""), r)
				}
				_, ad := getAssertion(t, k, ctap.CmdGetAssertion, r)
				o, err := ctap.DecodeGetAssertionExtensionOutputs(ad.Extensions)
				if err != nil || o.HMACSecret == nil {
					t.Fatalf("outputs %+v %v", o, err)
				}
				if (ad.Flags&ctap.FlagUV != 0) != uv {
					t.Fatalf("flags %#x", ad.Flags)
				}
				return p.decrypt(o.HMACSecret)
			}
			c := k.Credentials()[0]
			k.mu.Lock()
			withUV, withoutUV := k.st.Credentials[0].CredRandomWithUV, k.st.Credentials[0].CredRandomWithoutUV
			k.mu.Unlock()
			if !c.HMACSecret {
				t.Error("Credentials() says no hmac-secret")
			}
			if got := eval(rkID, salt1, false); !bytes.Equal(got, hm(withoutUV, salt1)) {
				t.Errorf("output without UV is not HMAC(CredRandomWithoutUV, salt1)")
			}
			if got := eval(rkID, append(bytes.Clone(salt1), salt2...), true); !bytes.Equal(got, append(hm(withUV, salt1), hm(withUV, salt2)...)) {
				t.Errorf("output with UV is not HMAC(CredRandomWithUV, salt1) || HMAC(CredRandomWithUV, salt2)")
			}
			a, b := eval(nrID, salt1, false), eval(nrID, salt1, false)
			withUVOut := eval(nrID, salt1, true)
			other := eval(nrID, salt2, false)
			switch {
			case len(a) != 32 || !bytes.Equal(a, b):
				t.Error("non-discoverable output not stable per salt")
			case bytes.Equal(a, withUVOut):
				t.Error("non-discoverable output the same with and without UV")
			case bytes.Equal(a, other):
				t.Error("non-discoverable output the same for two salts")
			case bytes.Equal(a, eval(rkID, salt1, false)):
				t.Error("two credentials give the same output")
			}
			if !bytes.Equal(withUVOut, eval(nrID, salt1, true)) {
				t.Error("non-discoverable output with UV not stable")
			}
		})
	}
	t.Run("rejects", func(t *testing.T) {
		k := newTestKey(t, nil)
		_, ad := makeCredential(t, k, withExt(mcRequest("nr", false), "hmac-secret", true))
		id := ad.Attested.CredentialID
		p := agree(t, k, 2)
		enc := p.encrypt(salt1)
		short := p.encrypt(salt1[:16])
		for _, tt := range []struct {
			name string
			in   map[int]any
			up   bool
			want ctap.Status
		}{
			{"bad saltAuth", map[int]any{1: p.key, 2: enc, 3: make([]byte, 32), 4: 2}, true, ctap.StatusPINAuthInvalid},
			{"16-byte salt", map[int]any{1: p.key, 2: short, 3: p.authenticate(short), 4: 2}, true, ctap.StatusInvalidParameter},
			{"protocol 3", map[int]any{1: p.key, 2: enc, 3: p.authenticate(enc), 4: 3}, true, ctap.StatusPINAuthInvalid},
			{"wrong protocol", map[int]any{1: p.key, 2: enc, 3: p.authenticate(enc)}, true, ctap.StatusPINAuthInvalid},
			{"missing saltAuth", map[int]any{1: p.key, 2: enc, 4: 2}, true, ctap.StatusMissingParameter},
			{"without up", map[int]any{1: p.key, 2: enc, 3: p.authenticate(enc), 4: 2}, false, ctap.StatusUnsupportedOption},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := withExt(gaRequest(id), "hmac-secret", cbor.RawMessage(ctap.MustMarshal(tt.in)))
				if !tt.up {
					r.Options = map[string]bool{"up": false}
				}
				if s, _ := do(t, k, ctap.CmdGetAssertion, r); s != tt.want {
					t.Errorf("status %v, want %v", s, tt.want)
				}
			})
		}
		// A credential made without hmac-secret gives no output.
		_, ad = makeCredential(t, k, mcRequest("plain", false))
		p, in := hmacInput(t, k, 2, salt1)
		_ = p
		_, ad = getAssertion(t, k, ctap.CmdGetAssertion, withExt(gaRequest(ad.Attested.CredentialID), "hmac-secret", in))
		if ad.Extensions != nil {
			t.Errorf("outputs %x for a credential without hmac-secret", ad.Extensions)
		}
	})
}

func TestCredBlob(t *testing.T) {
	k := newTestKey(t, nil)
	blob := []byte("a small secret")
	for _, tt := range []struct {
		name   string
		rk     bool
		blob   []byte
		stored bool
	}{
		{"discoverable", true, blob, true},
		{"32 bytes", true, make([]byte, 32), true},
		{"33 bytes", true, make([]byte, 33), false},
		{"non-discoverable", false, blob, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ad := makeCredential(t, k, withExt(mcRequest(tt.name, tt.rk), "credBlob", tt.blob))
			out, err := ctap.DecodeMakeCredentialExtensionOutputs(ad.Extensions)
			if err != nil || out.CredBlob == nil || *out.CredBlob != tt.stored {
				t.Fatalf("outputs %+v %v", out, err)
			}
			_, gad := getAssertion(t, k, ctap.CmdGetAssertion, withExt(gaRequest(ad.Attested.CredentialID), "credBlob", true))
			gout, err := ctap.DecodeGetAssertionExtensionOutputs(gad.Extensions)
			want := []byte{}
			if tt.stored {
				want = tt.blob
			}
			if err != nil || gout.CredBlob == nil || !bytes.Equal(gout.CredBlob, want) {
				t.Errorf("getAssertion credBlob %x %v, want %x", gout.CredBlob, err, want)
			}
		})
	}
}

func TestLargeBlobKey(t *testing.T) {
	k := newTestKey(t, nil)
	resp, ad := makeCredential(t, k, withExt(mcRequest("a", true), "largeBlobKey", true))
	if len(resp.LargeBlobKey) != 32 {
		t.Fatalf("largeBlobKey %x", resp.LargeBlobKey)
	}
	ga, _ := getAssertion(t, k, ctap.CmdGetAssertion, withExt(gaRequest(ad.Attested.CredentialID), "largeBlobKey", true))
	if !bytes.Equal(ga.LargeBlobKey, resp.LargeBlobKey) {
		t.Errorf("getAssertion largeBlobKey %x", ga.LargeBlobKey)
	}
	ga, _ = getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID))
	if ga.LargeBlobKey != nil {
		t.Error("largeBlobKey without asking")
	}
	k2 := newTestKey(t, &Config{NoLargeBlobs: true})
	resp, _ = makeCredential(t, k2, withExt(mcRequest("a", false), "largeBlobKey", true))
	if resp.LargeBlobKey != nil {
		t.Error("largeBlobKey from a key without large blobs")
	}
}
