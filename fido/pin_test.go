package fido_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// These tests drive the client's PIN and user verification code against
// the virtual key, in process and over its socket, with each PIN/UV auth
// protocol.

const (
	testPIN  = "correct horse"
	wrongPIN = "battery staple"
)

var errDeclined = errors.New("the person closed the PIN dialog")

// pinPrompt answers Prompt.PIN from a script and records each request.
type pinPrompt struct {
	mu      sync.Mutex
	answers []string // successive answers; when they run out, decline
	always  string   // if set, the answer once the script has run out
	reqs    []fido.PINRequest
}

func (p *pinPrompt) ask(ctx context.Context, req fido.PINRequest) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, req)
	if len(p.answers) == 0 {
		if p.always != "" {
			return p.always, nil
		}
		return "", errDeclined
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	return a, nil
}

// script sets the next answers and forgets earlier requests.
func (p *pinPrompt) script(answers ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers, p.reqs = answers, nil
}

func (p *pinPrompt) requests() []fido.PINRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]fido.PINRequest(nil), p.reqs...)
}

// variant is one way of reaching a key: a transport and a PIN/UV auth
// protocol (0: the client's choice, which is two on a CTAP 2.1 key).
type variant struct {
	name     string
	socket   bool
	protocol int
}

var variants = []variant{
	{"inprocess/p2", false, 0},
	{"inprocess/p1", false, 1},
	{"socket/p2", true, 0},
	{"socket/p1", true, 1},
}

// open opens k as v says, with prompt.
func (v variant) open(t testing.TB, k *virtual.Key, prompt fido.Prompt) *fido.Device {
	t.Helper()
	d := openWithPrompt(t, k, v.socket, prompt)
	if v.protocol != 0 {
		fido.ForcePINProtocol(d, v.protocol)
	}
	return d
}

func openWithPrompt(t testing.TB, k *virtual.Key, socket bool, prompt fido.Prompt) *fido.Device {
	t.Helper()
	opener := &fido.Opener{Prompt: prompt}
	if !socket {
		d, err := k.Open(context.Background(), opener)
		if err != nil {
			t.Fatalf("opening virtual key in process: %v", err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	dir, err := os.MkdirTemp("", "fidokit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "key")
	srv, err := k.Listen(path)
	if err != nil {
		t.Fatalf("listening on %s: %v", path, err)
	}
	t.Cleanup(func() { srv.Close() })
	d, err := opener.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func makeReq(rpID, user string) *fido.MakeCredentialRequest {
	return &fido.MakeCredentialRequest{
		ClientDataHash: hash("mc " + rpID + user),
		RP:             fido.RelyingParty{ID: rpID, Name: "RP " + rpID},
		User:           fido.User{ID: []byte("id-" + user), Name: user, DisplayName: "User " + user},
	}
}

func getReq(rpID string, allow ...[]byte) *fido.GetAssertionRequest {
	return &fido.GetAssertionRequest{RPID: rpID, ClientDataHash: hash("ga " + rpID), AllowList: allow}
}

// wantPINError checks err is a *PINError for status with retries left.
func wantPINError(t *testing.T, err error, status fido.Status, retries int) {
	t.Helper()
	var pe *fido.PINError
	if !errors.As(err, &pe) || !errors.Is(err, status) {
		t.Fatalf("err = %v, want a *PINError matching %v", err, status)
	}
	if pe.Retries != retries {
		t.Fatalf("PINError.Retries = %d, want %d (%v)", pe.Retries, retries, err)
	}
}

func TestPINManagement(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{})
			d := v.open(t, k, fido.Prompt{})
			ctx := ctxT(t)
			retries := func(want int) {
				t.Helper()
				n, pc, err := d.PINRetries(ctx)
				if err != nil || n != want || pc {
					t.Fatalf("PINRetries = %d, %v, %v; want %d, false", n, pc, err, want)
				}
			}
			retries(8)
			for name, pin := range map[string]string{
				"too short":   "123",
				"too long":    strings.Repeat("x", 64),
				"not UTF-8":   "\xff\xfe\xfd\xfc",
				"NUL":         "12\x0034",
				"empty":       "",
				"3 runes, 9B": "日本語",
			} {
				err := d.SetPIN(ctx, pin)
				if !errors.Is(err, fido.StatusPINPolicyViolation) || !errors.Is(err, fido.ErrInvalidRequest) {
					t.Errorf("SetPIN(%s) = %v, want StatusPINPolicyViolation and ErrInvalidRequest", name, err)
				}
			}
			if k.HasPIN() {
				t.Fatal("a refused PIN was set")
			}
			if err := d.SetPIN(ctx, testPIN); err != nil {
				t.Fatalf("SetPIN: %v", err)
			}
			info, err := d.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if set, ok := info.Option("clientPin"); !set || !ok {
				t.Errorf("after SetPIN, clientPin = %v, %v", set, ok)
			}
			if err := d.SetPIN(ctx, wrongPIN); !errors.Is(err, fido.StatusNotAllowed) {
				t.Errorf("second SetPIN = %v, want StatusNotAllowed", err)
			}
			err = d.ChangePIN(ctx, wrongPIN, "new pin 1")
			wantPINError(t, err, fido.StatusPINInvalid, 7)
			if !strings.Contains(err.Error(), "7 retries left") {
				t.Errorf("error text %q does not say how many retries are left", err)
			}
			retries(7)
			if err := d.ChangePIN(ctx, testPIN, "12"); !errors.Is(err, fido.StatusPINPolicyViolation) {
				t.Errorf("ChangePIN to a short PIN = %v, want StatusPINPolicyViolation", err)
			}
			retries(7) // refused before the key was asked
			if err := d.ChangePIN(ctx, testPIN, "new pin 1"); err != nil {
				t.Fatalf("ChangePIN: %v", err)
			}
			retries(8)
			wantPINError(t, d.ChangePIN(ctx, testPIN, "new pin 2"), fido.StatusPINInvalid, 7)
			if err := d.ChangePIN(ctx, "new pin 1", testPIN); err != nil {
				t.Fatalf("ChangePIN back: %v", err)
			}
			if _, err := d.UVRetries(ctx); !errors.Is(err, fido.ErrNotSupported) {
				t.Errorf("UVRetries without built-in UV = %v, want ErrNotSupported", err)
			}
		})
	}
}

func TestPINUnsupported(t *testing.T) {
	ctx := ctxT(t)
	t.Run("no clientPin", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{NoClientPIN: true}), false, fido.Prompt{})
		if err := d.SetPIN(ctx, testPIN); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("SetPIN = %v, want ErrNotSupported", err)
		}
		if _, _, err := d.PINRetries(ctx); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("PINRetries = %v, want ErrNotSupported", err)
		}
	})
	t.Run("U2F only", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{U2FOnly: true}), false, fido.Prompt{})
		if err := d.SetPIN(ctx, testPIN); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("SetPIN = %v, want ErrNotSupported", err)
		}
		if err := d.ChangePIN(ctx, testPIN, wrongPIN); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("ChangePIN = %v, want ErrNotSupported", err)
		}
	})
	t.Run("minPINLength", func(t *testing.T) {
		k := newKey(t, &virtual.Config{MinPINLength: 8})
		d := openWithPrompt(t, k, false, fido.Prompt{})
		if err := d.SetPIN(ctx, "1234567"); !errors.Is(err, fido.StatusPINPolicyViolation) {
			t.Errorf("SetPIN below the key's minimum = %v, want StatusPINPolicyViolation", err)
		}
		if err := d.SetPIN(ctx, "12345678"); err != nil {
			t.Errorf("SetPIN at the minimum: %v", err)
		}
	})
}

// TestWrongPINs walks the PIN retry counter down to zero: each wrong PIN
// costs one retry and says how many are left, the third in a row blocks
// PIN entry until the key is replugged, and the eighth blocks the PIN.
func TestWrongPINs(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			prompt := &pinPrompt{}
			d := v.open(t, k, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			uvGet := func() error {
				t.Helper()
				_, err := d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: hash("x"), UserVerification: true})
				return err
			}

			// A wrong PIN, then the person gives up.
			prompt.script(wrongPIN)
			err := uvGet()
			wantPINError(t, err, fido.StatusPINInvalid, 7)
			if !errors.Is(err, fido.ErrPINRequired) || !errors.Is(err, errDeclined) {
				t.Errorf("declining after a wrong PIN: %v, want ErrPINRequired and the callback's error", err)
			}
			reqs := prompt.requests()
			if len(reqs) != 2 || reqs[0].Retry || reqs[0].Retries != 8 || !reqs[1].Retry || reqs[1].Retries != 7 {
				t.Errorf("PIN requests = %+v, want a first with 8 retries and a retry with 7", reqs)
			}
			if reqs[0].Op != "getAssertion" || reqs[0].RPID != "example.com" {
				t.Errorf("PIN request = %+v, want Op getAssertion for example.com", reqs[0])
			}

			// Two more in a row: the second of them is the third in a row,
			// and the key refuses PINs until it is replugged.
			prompt.script(wrongPIN, wrongPIN, testPIN)
			err = uvGet()
			wantPINError(t, err, fido.StatusPINAuthBlocked, 5)
			if n := len(prompt.requests()); n != 2 {
				t.Errorf("prompted %d times, want 2: no prompt once PIN entry is blocked", n)
			}
			if n, pc, err := d.PINRetries(ctx); err != nil || n != 5 || !pc {
				t.Errorf("PINRetries = %d, %v, %v; want 5, true", n, pc, err)
			}
			// Even the right PIN is not asked for until the replug.
			prompt.script(testPIN)
			wantPINError(t, uvGet(), fido.StatusPINAuthBlocked, 5)
			if n := len(prompt.requests()); n != 0 {
				t.Errorf("prompted %d times while PIN entry was blocked", n)
			}
			k.Replug()
			if n, pc, err := d.PINRetries(ctx); err != nil || n != 5 || pc {
				t.Errorf("after Replug, PINRetries = %d, %v, %v; want 5, false", n, pc, err)
			}

			// Wrong PINs through ChangePIN count the same way.
			wantPINError(t, d.ChangePIN(ctx, wrongPIN, "x-new-pin"), fido.StatusPINInvalid, 4)
			wantPINError(t, d.ChangePIN(ctx, wrongPIN, "x-new-pin"), fido.StatusPINInvalid, 3)
			wantPINError(t, d.ChangePIN(ctx, wrongPIN, "x-new-pin"), fido.StatusPINAuthBlocked, 2)
			k.Replug()
			wantPINError(t, d.ChangePIN(ctx, wrongPIN, "x-new-pin"), fido.StatusPINInvalid, 1)
			// The eighth wrong PIN blocks it for good.
			err = d.ChangePIN(ctx, wrongPIN, "x-new-pin")
			wantPINError(t, err, fido.StatusPINBlocked, 0)
			k.Replug()
			prompt.script(testPIN)
			wantPINError(t, uvGet(), fido.StatusPINBlocked, 0)
			if n := len(prompt.requests()); n != 0 {
				t.Errorf("prompted %d times for a blocked PIN", n)
			}
			if err := d.ChangePIN(ctx, testPIN, "x-new-pin"); !errors.Is(err, fido.StatusPINBlocked) {
				t.Errorf("ChangePIN with the right PIN once blocked = %v, want StatusPINBlocked", err)
			}
		})
	}
}

// TestRightPINResetsRetries checks a right PIN after wrong ones restores
// the counter.
func TestRightPINResetsRetries(t *testing.T) {
	k := newKey(t, &virtual.Config{PIN: testPIN})
	prompt := &pinPrompt{}
	d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
	ctx := ctxT(t)
	prompt.script(wrongPIN, wrongPIN, testPIN)
	req := makeReq("example.com", "alice")
	req.UserVerification = true
	att, err := d.MakeCredential(ctx, req)
	if err != nil {
		t.Fatalf("MakeCredential after two wrong PINs: %v", err)
	}
	if !att.UserVerified {
		t.Error("UV flag not set")
	}
	reqs := prompt.requests()
	if len(reqs) != 3 || reqs[2].Retries != 6 || !reqs[2].Retry {
		t.Errorf("PIN requests = %+v", reqs)
	}
	if n, _, _ := d.PINRetries(ctx); n != 8 {
		t.Errorf("PINRetries after the right PIN = %d, want 8", n)
	}
}

// TestPINInCeremonies checks when makeCredential and getAssertion ask for
// the PIN and what they do with it.
func TestPINInCeremonies(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			prompt := &pinPrompt{always: testPIN}
			d := v.open(t, k, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			tests := []struct {
				name         string
				uv, rk       bool
				wantPrompts  int
				wantVerified bool
			}{
				{"touch only", false, false, 0, false},
				// makeCredUvNotRqd covers only non-discoverable ones.
				{"discoverable without uv", false, true, 1, true},
				{"uv", true, false, 1, true},
				{"discoverable with uv", true, true, 1, true},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					prompt.script()
					req := makeReq("example.com", tt.name)
					req.UserVerification, req.Discoverable = tt.uv, tt.rk
					att, err := d.MakeCredential(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					if att.UserVerified != tt.wantVerified {
						t.Errorf("MakeCredential UV flag = %v, want %v", att.UserVerified, tt.wantVerified)
					}
					if n := len(prompt.requests()); n != tt.wantPrompts {
						t.Errorf("MakeCredential prompted %d times, want %d", n, tt.wantPrompts)
					} else if n > 0 && prompt.requests()[0].Op != "makeCredential" {
						t.Errorf("PIN request %+v, want Op makeCredential", prompt.requests()[0])
					}
					prompt.script()
					get := getReq("example.com", att.CredentialID)
					get.UserVerification = tt.uv
					as, err := d.GetAssertion(ctx, get)
					if err != nil {
						t.Fatal(err)
					}
					if as[0].UserVerified != tt.uv {
						t.Errorf("GetAssertion UV flag = %v, want %v", as[0].UserVerified, tt.uv)
					}
					if n, want := len(prompt.requests()), map[bool]int{false: 0, true: 1}[tt.uv]; n != want {
						t.Errorf("GetAssertion prompted %d times, want %d", n, want)
					}
				})
			}
		})
	}
}

func TestPINRequired(t *testing.T) {
	ctx := ctxT(t)
	uvMake := func(d *fido.Device) error {
		req := makeReq("example.com", "alice")
		req.UserVerification = true
		_, err := d.MakeCredential(ctx, req)
		return err
	}
	tests := []struct {
		name    string
		cfg     *virtual.Config
		prompt  fido.Prompt
		want    []error
		wantNot error
	}{
		{"no callback", &virtual.Config{PIN: testPIN}, fido.Prompt{}, []error{fido.ErrPINRequired}, nil},
		{"declined", &virtual.Config{PIN: testPIN}, fido.Prompt{PIN: (&pinPrompt{}).ask}, []error{fido.ErrPINRequired, errDeclined}, nil},
		{"PIN not set", &virtual.Config{}, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask}, []error{fido.StatusPINNotSet}, fido.ErrNotSupported},
		{"no PIN support", &virtual.Config{NoClientPIN: true}, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask}, []error{fido.ErrNotSupported}, nil},
		{"not a PIN", &virtual.Config{PIN: testPIN}, fido.Prompt{PIN: (&pinPrompt{always: "12"}).ask}, []error{fido.ErrInvalidRequest, fido.StatusPINPolicyViolation}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKey(t, tt.cfg)
			d := openWithPrompt(t, k, false, tt.prompt)
			err := uvMake(d)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want it to match %v", err, w)
				}
			}
			if tt.wantNot != nil && errors.Is(err, tt.wantNot) {
				t.Errorf("err = %v, should not match %v", err, tt.wantNot)
			}
			if n := k.PINRetries(); n != 8 {
				t.Errorf("the key's PIN retries = %d, want 8: no PIN was tried", n)
			}
			if len(k.Credentials()) != 0 {
				t.Error("a credential was made")
			}
		})
	}
}

// TestAlwaysUV checks that a key with alwaysUv gets a PIN for a sign-in
// that did not ask for verification.
func TestAlwaysUV(t *testing.T) {
	k := newKey(t, &virtual.Config{PIN: testPIN, AlwaysUV: true, NoU2F: true})
	prompt := &pinPrompt{always: testPIN}
	d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
	ctx := ctxT(t)
	att, err := d.MakeCredential(ctx, makeReq("example.com", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	as, err := d.GetAssertion(ctx, getReq("example.com", att.CredentialID))
	if err != nil {
		t.Fatal(err)
	}
	if !att.UserVerified || !as[0].UserVerified || len(prompt.requests()) != 2 {
		t.Errorf("UV flags %v, %v after %d prompts; want both set after 2", att.UserVerified, as[0].UserVerified, len(prompt.requests()))
	}
}

// TestBuiltInUV checks built-in user verification: a token by UV without
// a PIN prompt, the fallback to the PIN when it fails, and the errors when
// there is no PIN to fall back to.
func TestBuiltInUV(t *testing.T) {
	ctx := ctxT(t)
	uvGet := func(d *fido.Device) ([]*fido.Assertion, error) {
		req := getReq("example.com")
		req.UserVerification = true
		return d.GetAssertion(ctx, req)
	}
	enroll := func(t *testing.T, d *fido.Device) {
		t.Helper()
		req := makeReq("example.com", "alice")
		req.Discoverable = true
		if _, err := d.MakeCredential(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("succeeds", func(t *testing.T) {
		k := newKey(t, &virtual.Config{BuiltInUV: true})
		prompt := &pinPrompt{}
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
		enroll(t, d)
		as, err := uvGet(d)
		if err != nil {
			t.Fatal(err)
		}
		if !as[0].UserVerified || len(prompt.requests()) != 0 {
			t.Errorf("UV flag %v after %d PIN prompts; want set after none", as[0].UserVerified, len(prompt.requests()))
		}
		if n, err := d.UVRetries(ctx); err != nil || n <= 0 {
			t.Errorf("UVRetries = %d, %v", n, err)
		}
	})
	t.Run("fails, falls back to the PIN", func(t *testing.T) {
		fail := false
		var mu sync.Mutex
		verifier := func(ctx context.Context, req virtual.UVRequest) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return virtual.ErrUVFailed
			}
			return nil
		}
		k := newKey(t, &virtual.Config{BuiltInUV: true, PIN: testPIN, UserVerifier: verifier})
		prompt := &pinPrompt{always: testPIN}
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
		enroll(t, d)
		mu.Lock()
		fail = true
		mu.Unlock()
		as, err := uvGet(d)
		if err != nil {
			t.Fatal(err)
		}
		reqs := prompt.requests()
		if !as[0].UserVerified || len(reqs) != 1 || !reqs[0].UVFailed {
			t.Errorf("UV flag %v after PIN requests %+v; want set after one with UVFailed", as[0].UserVerified, reqs)
		}
	})
	t.Run("CTAP 2.0 key: the uv option", func(t *testing.T) {
		k := newKey(t, &virtual.Config{BuiltInUV: true, CTAPVersion: virtual.CTAP20})
		prompt := &pinPrompt{}
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
		info, err := d.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, tokens := info.Option("pinUvAuthToken"); tokens {
			t.Fatal("a CTAP 2.0 key offers pinUvAuthToken")
		}
		enroll(t, d)
		as, err := uvGet(d)
		if err != nil {
			t.Fatal(err)
		}
		if !as[0].UserVerified || len(prompt.requests()) != 0 {
			t.Errorf("UV flag %v after %d PIN prompts; want set after none", as[0].UserVerified, len(prompt.requests()))
		}
	})
	t.Run("fails without a PIN", func(t *testing.T) {
		k := newKey(t, &virtual.Config{BuiltInUV: true, UserVerifier: virtual.UVFail})
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
		if _, err := uvGet(d); !errors.Is(err, fido.StatusUVInvalid) && !errors.Is(err, fido.StatusUVBlocked) {
			t.Errorf("err = %v, want StatusUVInvalid or StatusUVBlocked", err)
		}
	})
}

// TestLegacyPINToken checks a CTAP 2.0 key: protocol one and getPinToken,
// which has no permissions.
func TestLegacyPINToken(t *testing.T) {
	for _, socket := range []bool{false, true} {
		t.Run(map[bool]string{false: "inprocess", true: "socket"}[socket], func(t *testing.T) {
			k := newKey(t, &virtual.Config{CTAPVersion: virtual.CTAP20})
			prompt := &pinPrompt{always: testPIN}
			d := openWithPrompt(t, k, socket, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			info, err := d.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := info.Option("pinUvAuthToken"); ok || len(info.PINUVAuthProtocols) != 1 || info.PINUVAuthProtocols[0] != 1 {
				t.Fatalf("CTAP20 key: options %v, protocols %v", info.Options, info.PINUVAuthProtocols)
			}
			if err := d.SetPIN(ctx, testPIN); err != nil {
				t.Fatal(err)
			}
			req := makeReq("example.com", "alice")
			req.UserVerification = true
			att, err := d.MakeCredential(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			get := getReq("example.com", att.CredentialID)
			get.UserVerification = true
			as, err := d.GetAssertion(ctx, get)
			if err != nil {
				t.Fatal(err)
			}
			if !att.UserVerified || !as[0].UserVerified {
				t.Error("UV flags not set")
			}
			if n := len(prompt.requests()); n != 2 {
				t.Errorf("%d PIN prompts, want 2", n)
			}
			wantPINError(t, d.ChangePIN(ctx, wrongPIN, "another pin"), fido.StatusPINInvalid, 7)
		})
	}
}

// TestTokenBinding checks the key's enforcement of what a token was
// issued for, reached through the test hooks: a token for RP A is refused
// for RP B, a token used once is not used again, and a makeCredential
// token is refused for getAssertion.
func TestTokenBinding(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			d := v.open(t, k, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
			ctx := ctxT(t)
			for _, rp := range []string{"a.example", "b.example"} {
				req := makeReq(rp, "alice")
				req.Discoverable = true
				if _, err := d.MakeCredential(ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			tokA, err := fido.Token(ctx, d, pinuv.PermGetAssertion, "a.example")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fido.GetAssertionWithToken(ctx, d, tokA, getReq("b.example")); !errors.Is(err, fido.StatusPINAuthInvalid) {
				t.Errorf("RP A's token for RP B: %v, want StatusPINAuthInvalid", err)
			}
			tokA, err = fido.Token(ctx, d, pinuv.PermGetAssertion, "a.example")
			if err != nil {
				t.Fatal(err)
			}
			as, err := fido.GetAssertionWithToken(ctx, d, tokA, getReq("a.example"))
			if err != nil || !as[0].UserVerified {
				t.Fatalf("RP A's token for RP A: %v", err)
			}
			// §6.2.2 step 9.3: the ceremony used the token up.
			if _, err := fido.GetAssertionWithToken(ctx, d, tokA, getReq("a.example")); !errors.Is(err, fido.StatusPINAuthInvalid) {
				t.Errorf("a used token again: %v, want StatusPINAuthInvalid", err)
			}
			tokMC, err := fido.Token(ctx, d, pinuv.PermMakeCredential, "a.example")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fido.GetAssertionWithToken(ctx, d, tokMC, getReq("a.example")); !errors.Is(err, fido.StatusPINAuthInvalid) {
				t.Errorf("an mc token for getAssertion: %v, want StatusPINAuthInvalid", err)
			}
		})
	}
}
