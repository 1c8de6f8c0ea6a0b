package virtual

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
)

func newTestKey(t testing.TB, cfg *Config) *Key {
	t.Helper()
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func nop(byte) {}

// snapshot is the key state a rejected request must leave alone.
type snapshot struct {
	counter uint32
	creds   int
	secret  []byte
}

func snap(k *Key) snapshot {
	k.mu.Lock()
	defer k.mu.Unlock()
	return snapshot{k.st.Counter, len(k.st.Credentials), bytes.Clone(k.st.WrapSecret)}
}

func (s snapshot) equal(o snapshot) bool {
	return s.counter == o.counter && s.creds == o.creds && bytes.Equal(s.secret, o.secret)
}

var cdh = bytes.Repeat([]byte{0x11}, 32)

// pair encodes one map entry, so tests can build maps in any order.
func pair(k, v any) []byte { return append(ctap.MustMarshal(k), ctap.MustMarshal(v)...) }

func mapOf(pairs ...[]byte) []byte {
	out := []byte{0xA0 | byte(len(pairs))}
	for _, p := range pairs {
		out = append(out, p...)
	}
	return out
}

func mcParams(rk bool) []byte {
	req := &ctap.MakeCredentialRequest{
		ClientDataHash:   cdh,
		RP:               &ctap.RPEntity{ID: "example.com"},
		User:             &ctap.UserEntity{ID: []byte("user-1"), Name: "alice"},
		PubKeyCredParams: []ctap.CredentialParam{{Type: "public-key", Alg: ctap.AlgES256}},
	}
	if rk {
		req.Options = map[string]bool{"rk": true}
	}
	return ctap.MustMarshal(req)
}

func cmd(c ctap.Command, params []byte) []byte { return append([]byte{byte(c)}, params...) }

func TestHandleCBORBadInput(t *testing.T) {
	rp := pair(2, map[string]any{"id": "example.com"})
	user := pair(3, map[string]any{"id": []byte{1}})
	algs := pair(4, []any{map[string]any{"type": "public-key", "alg": -7}})
	hash := pair(1, cdh)
	deep := []byte{0xA1, 0x61, 'x'}
	for range 20 {
		deep = append(deep, 0x81)
	}
	deep = append(deep, 0x01)

	tests := []struct {
		name string
		req  []byte
		want ctap.Status
	}{
		{"empty", nil, ctap.StatusInvalidLength},
		{"unknown command", []byte{0x55}, ctap.StatusInvalidCommand},
		{"getInfo with parameters", cmd(ctap.CmdGetInfo, []byte{0xA0}), ctap.StatusInvalidLength},
		{"not CBOR", cmd(ctap.CmdMakeCredential, []byte{0xFF}), ctap.StatusInvalidCBOR},
		{"not a map", cmd(ctap.CmdMakeCredential, ctap.MustMarshal([]int{1})), ctap.StatusCBORUnexpectedType},
		{"clientDataHash of wrong type", cmd(ctap.CmdMakeCredential, mapOf(pair(1, "hash"), rp, user, algs)), ctap.StatusCBORUnexpectedType},
		{"rp of wrong type", cmd(ctap.CmdMakeCredential, mapOf(hash, pair(2, 5), user, algs)), ctap.StatusCBORUnexpectedType},
		{"missing rp", cmd(ctap.CmdMakeCredential, mapOf(hash, user, algs)), ctap.StatusMissingParameter},
		{"missing pubKeyCredParams", cmd(ctap.CmdMakeCredential, mapOf(hash, rp, user)), ctap.StatusMissingParameter},
		{"short clientDataHash", cmd(ctap.CmdMakeCredential, mapOf(pair(1, []byte{1}), rp, user, algs)), ctap.StatusInvalidParameter},
		{"trailing bytes", cmd(ctap.CmdMakeCredential, append(mapOf(hash, rp, user, algs), 0x00)), ctap.StatusInvalidCBOR},
		{"duplicate key", cmd(ctap.CmdMakeCredential, mapOf(hash, rp, user, algs, hash)), ctap.StatusInvalidCBOR},
		{"keys out of order", cmd(ctap.CmdMakeCredential, mapOf(rp, hash, user, algs)), ctap.StatusInvalidCBOR},
		{"non-minimal integer", cmd(ctap.CmdMakeCredential, append([]byte{0xA4, 0x18, 0x01}, append(ctap.MustMarshal(cdh), append(rp, append(user, algs...)...)...)...)), ctap.StatusInvalidCBOR},
		{"deep nesting", cmd(ctap.CmdMakeCredential, mapOf(hash, rp, user, algs, append([]byte{0x06}, deep...))), ctap.StatusInvalidCBOR},
		{"no supported algorithm", cmd(ctap.CmdMakeCredential, mapOf(hash, rp, user, pair(4, []any{map[string]any{"type": "public-key", "alg": -257}}))), ctap.StatusUnsupportedAlgorithm},
		{"uv without built-in UV", cmd(ctap.CmdMakeCredential, mapOf(hash, rp, user, algs, pair(7, map[string]bool{"uv": true}))), ctap.StatusInvalidOption},
		{"up false in makeCredential", cmd(ctap.CmdMakeCredential, mapOf(hash, rp, user, algs, pair(7, map[string]bool{"up": false}))), ctap.StatusInvalidOption},
		{"getAssertion missing clientDataHash", cmd(ctap.CmdGetAssertion, mapOf(pair(1, "example.com"))), ctap.StatusMissingParameter},
		{"getAssertion rk option", cmd(ctap.CmdGetAssertion, mapOf(pair(1, "example.com"), pair(2, cdh), pair(5, map[string]bool{"rk": true}))), ctap.StatusUnsupportedOption},
		{"getAssertion nothing to use", cmd(ctap.CmdGetAssertion, mapOf(pair(1, "other.example"), pair(2, cdh))), ctap.StatusNoCredentials},
		{"getNextAssertion without getAssertion", cmd(ctap.CmdGetNextAssertion, nil), ctap.StatusNotAllowed},
		{"request over maxMsgSize", cmd(ctap.CmdMakeCredential, make([]byte, 1300)), ctap.StatusInvalidLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, nil)
			// One discoverable credential, so "state unchanged" has content.
			if r := k.handleCBOR(context.Background(), cmd(ctap.CmdMakeCredential, mcParams(true)), nop); r[0] != 0 {
				t.Fatalf("setup: status %x", r[0])
			}
			before := snap(k)
			got := k.handleCBOR(context.Background(), tt.req, nop)
			if len(got) != 1 || ctap.Status(got[0]) != tt.want {
				t.Fatalf("answer %x, want %v", got, tt.want)
			}
			if !before.equal(snap(k)) {
				t.Fatal("a rejected request changed the key's state")
			}
		})
	}
}

func TestDiscoverableNewestFirst(t *testing.T) {
	k := newTestKey(t, nil)
	ctx := context.Background()
	dev, err := k.Open(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	for _, name := range []string{"alice", "bob", "carol"} {
		_, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh,
			RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte(name), Name: name}, Discoverable: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Another RP's credential is not offered.
	dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh,
		RP: fido.RelyingParty{ID: "other.example"}, User: fido.User{ID: []byte("zed")}, Discoverable: true})
	as, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: cdh})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, string(a.User.ID))
		if a.User.Name != "" {
			t.Error("user name returned without user verification")
		}
	}
	if want := "carol bob alice"; joined(got) != want {
		t.Fatalf("accounts %q, want %q", joined(got), want)
	}
	if len(k.Credentials()) != 4 {
		t.Fatalf("%d credentials stored", len(k.Credentials()))
	}
	// Registering the same user again replaces the credential.
	dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh,
		RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte("bob")}, Discoverable: true})
	if len(k.Credentials()) != 4 {
		t.Fatalf("re-registration added a credential: %d", len(k.Credentials()))
	}
}

func joined(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestSignaturesAndCounter(t *testing.T) {
	for _, alg := range []fido.Algorithm{fido.ES256, fido.EdDSA} {
		t.Run(alg.String(), func(t *testing.T) {
			k := newTestKey(t, &Config{Algorithms: []fido.Algorithm{alg}})
			ctx := context.Background()
			dev, _ := k.Open(ctx, nil)
			defer dev.Close()
			att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh,
				RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}}, Algorithms: []fido.Algorithm{fido.RS256, alg}})
			if err != nil {
				t.Fatal(err)
			}
			if att.Algorithm != alg {
				t.Fatalf("algorithm %v", att.Algorithm)
			}
			_, pub, err := ctap.ParsePublicKey(att.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			last := att.SignCount
			for i := range 3 {
				as, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: cdh, AllowList: [][]byte{att.CredentialID}})
				if err != nil {
					t.Fatal(err)
				}
				a := as[0]
				msg := append(bytes.Clone(a.AuthData), cdh...)
				var ok bool
				switch p := pub.(type) {
				case *ecdsa.PublicKey:
					h := sha256.Sum256(msg)
					ok = ecdsa.VerifyASN1(p, h[:], a.Signature)
				case ed25519.PublicKey:
					ok = ed25519.Verify(p, msg, a.Signature)
				}
				if !ok {
					t.Fatalf("assertion %d: signature does not verify", i)
				}
				if a.SignCount <= last {
					t.Fatalf("counter %d after %d", a.SignCount, last)
				}
				last = a.SignCount
			}
			k.SetCounter(1)
			as, _ := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: cdh, AllowList: [][]byte{att.CredentialID}})
			if as[0].SignCount != 2 {
				t.Fatalf("counter after rollback = %d, want 2", as[0].SignCount)
			}
			// The credential ID is bound to its RP.
			if _, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "evil.example", ClientDataHash: cdh, AllowList: [][]byte{att.CredentialID}}); !errors.Is(err, fido.StatusNoCredentials) {
				t.Fatalf("other RP: %v", err)
			}
		})
	}
}

func TestPresenceOutcomes(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		ctx  func() (context.Context, context.CancelFunc)
		want ctap.Status
	}{
		{"denied", &Config{UserPresence: Deny}, nil, ctap.StatusOperationDenied},
		{"timed out", &Config{UserPresence: NewButton().Presence(), UserPresenceTimeout: 50 * time.Millisecond}, nil, ctap.StatusUserActionTimeout},
		{"cancelled", &Config{UserPresence: NewButton().Presence()}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, ctap.StatusKeepaliveCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, tt.cfg)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			var mu sync.Mutex
			var statuses []byte
			got := k.handleCBOR(ctx, cmd(ctap.CmdMakeCredential, mcParams(false)), func(s byte) {
				mu.Lock()
				statuses = append(statuses, s)
				mu.Unlock()
			})
			if len(got) != 1 || ctap.Status(got[0]) != tt.want {
				t.Fatalf("answer %x, want %v", got, tt.want)
			}
			if len(statuses) == 0 || statuses[0] != 2 {
				t.Fatalf("keepalive statuses %v, want UPNEEDED first", statuses)
			}
			if k.Counter() != 0 {
				t.Fatal("counter moved without a credential")
			}
		})
	}
}

func TestExcludeList(t *testing.T) {
	k := newTestKey(t, nil)
	ctx := context.Background()
	dev, _ := k.Open(ctx, nil)
	defer dev.Close()
	req := &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}}}
	att, err := dev.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// More excluded IDs than the key takes at once: the client probes in
	// batches and still finds the match.
	for i := range 20 {
		req.ExcludeList = append(req.ExcludeList, []byte{byte(i), 1, 2, 3})
	}
	req.ExcludeList = append(req.ExcludeList, att.CredentialID)
	if _, err := dev.MakeCredential(ctx, req); !errors.Is(err, fido.StatusCredentialExcluded) {
		t.Fatalf("err = %v, want CREDENTIAL_EXCLUDED", err)
	}
	req.ExcludeList = req.ExcludeList[:20]
	if _, err := dev.MakeCredential(ctx, req); err != nil {
		t.Fatalf("unrelated exclude list: %v", err)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	ctx := context.Background()
	k, err := New(&Config{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := k.Open(ctx, nil)
	nonRK, _ := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}}})
	rk, _ := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{2}}, Discoverable: true})
	dev.Close()
	k.Close()
	counter := k.Counter()

	k2 := newTestKey(t, &Config{StatePath: path})
	if k2.Counter() != counter {
		t.Fatalf("counter %d after restart, want %d", k2.Counter(), counter)
	}
	dev2, _ := k2.Open(ctx, nil)
	defer dev2.Close()
	for _, id := range [][]byte{nonRK.CredentialID, rk.CredentialID} {
		as, err := dev2.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: cdh, AllowList: [][]byte{id}})
		if err != nil || as[0].SignCount <= counter {
			t.Fatalf("after restart: %v", err)
		}
	}
}

func TestReset(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	k := newTestKey(t, &Config{Clock: clock})
	ctx := context.Background()
	dev, _ := k.Open(ctx, nil)
	defer dev.Close()
	att, _ := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}}, Discoverable: false})
	dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{2}}, Discoverable: true})
	advance(11 * time.Second)
	if err := dev.Reset(ctx); !errors.Is(err, fido.StatusNotAllowed) {
		t.Fatalf("reset after 11 s: %v, want NOT_ALLOWED", err)
	}
	k.Replug()
	advance(5 * time.Second)
	if err := dev.Reset(ctx); err != nil {
		t.Fatalf("reset after replug: %v", err)
	}
	if len(k.Credentials()) != 0 {
		t.Fatal("discoverable credentials survived reset")
	}
	if _, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: cdh, AllowList: [][]byte{att.CredentialID}}); !errors.Is(err, fido.StatusNoCredentials) {
		t.Fatalf("old credential after reset: %v", err)
	}
}

func TestMisbehaviour(t *testing.T) {
	ctx := context.Background()
	t.Run("status override", func(t *testing.T) {
		k := newTestKey(t, &Config{StatusOverride: map[byte]fido.Status{byte(ctap.CmdMakeCredential): fido.StatusKeyStoreFull}})
		dev, _ := k.Open(ctx, nil)
		defer dev.Close()
		_, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "a.example"}, User: fido.User{ID: []byte{1}}})
		if !errors.Is(err, fido.StatusKeyStoreFull) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("UP forced off and bad signature", func(t *testing.T) {
		k := newTestKey(t, &Config{ForceUPOff: true, BadSignature: true, Attestation: AttestationSelf})
		dev, _ := k.Open(ctx, nil)
		defer dev.Close()
		att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: "a.example"}, User: fido.User{ID: []byte{1}}})
		if err != nil {
			t.Fatal(err)
		}
		as, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "a.example", ClientDataHash: cdh, AllowList: [][]byte{att.CredentialID}})
		if err != nil {
			t.Fatal(err)
		}
		if as[0].UserPresent || att.UserPresent {
			t.Fatal("UP flag set")
		}
		_, pub, _ := ctap.ParsePublicKey(att.PublicKey)
		if ctap.VerifySignature(ctap.AlgES256, pub, append(bytes.Clone(as[0].AuthData), cdh...), as[0].Signature) == nil {
			t.Fatal("signature verifies")
		}
	})
	t.Run("CTAP 2.0 has no selection", func(t *testing.T) {
		k := newTestKey(t, &Config{Version: CTAP20})
		if r := k.handleCBOR(ctx, cmd(ctap.CmdSelection, nil), nop); ctap.Status(r[0]) != ctap.StatusInvalidCommand {
			t.Fatalf("answer %x", r)
		}
		dev, _ := k.Open(ctx, nil)
		defer dev.Close()
		if err := dev.Selection(ctx); err != nil { // the client falls back to the 2.0 way
			t.Fatalf("Selection on a 2.0 key: %v", err)
		}
	})
}

func TestU2FMessages(t *testing.T) {
	k := newTestKey(t, nil)
	app := sha256.Sum256([]byte("example.com"))
	reg := k.handleMsg((&ctap.APDU{INS: ctap.U2FRegister, Data: append(bytes.Clone(cdh), app[:]...)}).Marshal())
	body, sw, err := ctap.SplitStatusWord(reg)
	if err != nil || sw != ctap.SWNoError {
		t.Fatalf("register: %v %v", sw, err)
	}
	r, err := ctap.ParseU2FRegisterResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	auth := func(p1 byte, kh []byte, appParam [32]byte) ctap.StatusWord {
		d := append(append(bytes.Clone(cdh), appParam[:]...), byte(len(kh)))
		_, sw, _ := ctap.SplitStatusWord(k.handleMsg((&ctap.APDU{INS: ctap.U2FAuthenticate, P1: p1, Data: append(d, kh...)}).Marshal()))
		return sw
	}
	other := sha256.Sum256([]byte("other.example"))
	tests := []struct {
		name string
		got  ctap.StatusWord
		want ctap.StatusWord
	}{
		{"check-only, ours", auth(ctap.U2FCheckOnly, r.KeyHandle, app), ctap.SWConditionsNotSatisfied},
		{"check-only, other app", auth(ctap.U2FCheckOnly, r.KeyHandle, other), ctap.SWWrongData},
		{"enforce presence", auth(ctap.U2FEnforceUP, r.KeyHandle, app), ctap.SWNoError},
		{"don't enforce", auth(ctap.U2FDontEnforceUP, r.KeyHandle, app), ctap.SWNoError},
		{"tampered handle", auth(ctap.U2FEnforceUP, append(bytes.Clone(r.KeyHandle[:len(r.KeyHandle)-1]), 0), app), ctap.SWWrongData},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	for name, apdu := range map[string][]byte{
		"bad CLA":      {0x80, 0x03, 0, 0},
		"unknown INS":  {0x00, 0x44, 0, 0},
		"short":        {0x00},
		"register len": (&ctap.APDU{INS: ctap.U2FRegister, Data: []byte{1}}).Marshal(),
	} {
		_, sw, _ := ctap.SplitStatusWord(k.handleMsg(apdu))
		if sw == ctap.SWNoError {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, sw, _ := ctap.SplitStatusWord(k.handleMsg([]byte{0x80, 0x03, 0, 0})); sw != ctap.SWClaNotSupported {
		t.Errorf("bad CLA: %v", sw)
	}
	if _, sw, _ := ctap.SplitStatusWord(k.handleMsg([]byte{0x00, 0x44, 0, 0})); sw != ctap.SWInsNotSupported {
		t.Errorf("unknown INS: %v", sw)
	}
}

// FuzzHandleCBOR sends arbitrary CTAP2 requests. Every answer is a lone
// non-zero status or status 0 followed by one canonical CBOR item, and a
// rejected request leaves the key's state as it was.
func FuzzHandleCBOR(f *testing.F) {
	f.Add(cmd(ctap.CmdMakeCredential, mcParams(false)))
	f.Add(cmd(ctap.CmdMakeCredential, mcParams(true)))
	f.Add(cmd(ctap.CmdGetAssertion, mapOf(pair(1, "example.com"), pair(2, cdh))))
	f.Add(cmd(ctap.CmdGetInfo, nil))
	f.Add(cmd(ctap.CmdGetNextAssertion, nil))
	f.Add([]byte{0x01, 0xA1, 0x01, 0x01})
	f.Add([]byte{})
	k := newTestKey(f, &Config{MaxMsgSize: 7609})
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) > 0 && ctap.Command(req[0]) == ctap.CmdReset {
			return // reset erases state by design
		}
		before := snap(k)
		got := k.handleCBOR(context.Background(), req, nop)
		if len(got) == 0 {
			t.Fatal("empty answer")
		}
		if got[0] != 0 {
			if len(got) != 1 {
				t.Fatalf("error status with a body: %x", got)
			}
			if !before.equal(snap(k)) {
				t.Fatalf("rejected request (status %x) changed state", got[0])
			}
			return
		}
		if len(got) > 1 {
			if err := ctap.CheckCanonical("answer", got[1:]); err != nil {
				t.Fatalf("answer body: %v", err)
			}
		}
	})
}

// FuzzHandleMsg sends arbitrary U2F APDUs: every answer ends in a status
// word, and only a success moves the counter.
func FuzzHandleMsg(f *testing.F) {
	app := sha256.Sum256([]byte("example.com"))
	f.Add((&ctap.APDU{INS: ctap.U2FRegister, Data: append(bytes.Clone(cdh), app[:]...)}).Marshal())
	f.Add((&ctap.APDU{INS: ctap.U2FVersion}).Marshal())
	f.Add([]byte{0, 2, 3, 0, 0, 0, 0})
	f.Add([]byte{0x80})
	k := newTestKey(f, nil)
	f.Fuzz(func(t *testing.T, apdu []byte) {
		before := k.Counter()
		got := k.handleMsg(apdu)
		_, sw, err := ctap.SplitStatusWord(got)
		if err != nil {
			t.Fatalf("answer %x: %v", got, err)
		}
		if sw != ctap.SWNoError && k.Counter() != before {
			t.Fatalf("failed APDU (%v) moved the counter", sw)
		}
	})
}
