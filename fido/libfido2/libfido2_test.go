//go:build cgo

package libfido2_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/fidotest"
	"github.com/fidokit/fidokit/fido/libfido2"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/hid/preload"
)

// openLibfido2 is a fidotest.Open for this backend: a virtual key on a
// socket, opened by libfido2 through the preload shim.
func openLibfido2(t *testing.T, cfg fidotest.Config) (fido.Authenticator, *virtual.Key) {
	t.Helper()
	k := fidotest.NewKey(t, cfg.Key)
	path := fidotest.Serve(t, k)
	d, err := (&libfido2.Opener{Prompt: cfg.Prompt}).Open(context.Background(), path)
	if err != nil {
		t.Fatalf("libfido2.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d, k
}

// TestConformance runs the behaviour suite that the pure-Go client passes
// against libfido2. libfido2 opens hidraw nodes only, so the test runs in
// a child process started with the preload shim in LD_PRELOAD, which the
// dynamic loader reads only at process start (preload.Reexec).
func TestConformance(t *testing.T) {
	if !preload.Reexec(t) {
		return
	}
	// libfido2 1.12 (Debian bookworm) sends credential management only
	// as 0x41, which the virtual CTAP 2.1 key answers as shipping keys do.
	fidotest.Run(t, openLibfido2, &fidotest.Limits{OneAssertion: true, PartialInfo: true})
}

func TestOpenNoKey(t *testing.T) {
	dir, err := os.MkdirTemp("", "fklib")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := fidotest.NewKey(t, nil)
	sock := fidotest.Serve(t, k)

	tests := []struct {
		name string
		path string
		skip bool
	}{
		{"empty", "", false},
		{"missing", filepath.Join(dir, "nothing"), false},
		{"regular file", file, false},
		// Without the shim, a socket is no device to libfido2.
		{"socket without the shim", sock, preload.Loaded()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("the shim is loaded")
			}
			d, err := libfido2.Open(context.Background(), tt.path)
			if !errors.Is(err, fido.ErrNoDevice) {
				t.Errorf("Open(%q) = %v, %v; want ErrNoDevice", tt.path, d, err)
			}
		})
	}
}

// TestUnderShim checks the backend's own behaviour beyond the shared
// suite: the features go-libfido2 lacks fail as documented.
func TestUnderShim(t *testing.T) {
	if !preload.Reexec(t) {
		return
	}
	ctx := context.Background()
	k := fidotest.NewKey(t, nil)
	path := fidotest.Serve(t, k)
	d, err := libfido2.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.DeviceInfo().Path; got != path {
		t.Errorf("DeviceInfo().Path = %q, want %q", got, path)
	}

	mcReq := func(ext fido.MakeCredentialExtensions) *fido.MakeCredentialRequest {
		return &fido.MakeCredentialRequest{
			ClientDataHash: make([]byte, 32), RP: fido.RelyingParty{ID: "example.com"},
			User: fido.User{ID: []byte{1}, Name: "alice"}, Discoverable: true, Extensions: ext,
		}
	}

	t.Run("not supported", func(t *testing.T) {
		for name, op := range map[string]func() error{
			"Wink":       func() error { return d.Wink(ctx) },
			"Selection":  func() error { return d.Selection(ctx) },
			"UVRetries":  func() error { _, err := d.UVRetries(ctx); return err },
			"UpdateUser": func() error { return d.UpdateUser(ctx, []byte{1}, fido.User{ID: []byte{1}}) },
			"MakeCredential without a user name": func() error {
				req := mcReq(fido.MakeCredentialExtensions{})
				req.User.Name = ""
				_, err := d.MakeCredential(ctx, req)
				return err
			},
			"MakeCredential with credBlob": func() error {
				_, err := d.MakeCredential(ctx, mcReq(fido.MakeCredentialExtensions{CredBlob: []byte{1}}))
				return err
			},
			"GetAssertion with largeBlobKey": func() error {
				_, err := d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
					Extensions: fido.GetAssertionExtensions{LargeBlobKey: true}})
				return err
			},
		} {
			if err := op(); !errors.Is(err, fido.ErrNotSupported) {
				t.Errorf("%s: %v, want ErrNotSupported", name, err)
			}
		}
	})

	info, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("credProtect", func(t *testing.T) {
		if !slices.Contains(info.Extensions, "credProtect") {
			t.Fatal("the virtual key does not offer credProtect")
		}
		att, err := d.MakeCredential(ctx, mcReq(fido.MakeCredentialExtensions{CredProtect: fido.CredProtectUVRequired}))
		if err != nil {
			t.Fatal(err)
		}
		if att.Extensions.CredProtect != fido.CredProtectUVRequired {
			t.Errorf("credProtect output %d, want %d", att.Extensions.CredProtect, fido.CredProtectUVRequired)
		}
		// Level 3: invisible without user verification (CTAP 2.1 §12.1).
		_, err = d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32), AllowList: [][]byte{att.CredentialID}})
		if !errors.Is(err, fido.StatusNoCredentials) {
			t.Errorf("GetAssertion of a credProtect 3 credential without UV: %v, want StatusNoCredentials", err)
		}
	})
	t.Run("hmac-secret", func(t *testing.T) {
		if !slices.Contains(info.Extensions, "hmac-secret") {
			t.Fatal("the virtual key does not offer hmac-secret")
		}
		att, err := d.MakeCredential(ctx, mcReq(fido.MakeCredentialExtensions{HMACSecret: true}))
		if err != nil {
			t.Fatal(err)
		}
		if !att.Extensions.HMACSecret {
			t.Fatal("the key did not confirm hmac-secret")
		}
		salt1, salt2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
		get := func(a fido.Authenticator, salt1, salt2 []byte) *fido.HMACSecretOutput {
			t.Helper()
			as, err := a.GetAssertion(ctx, &fido.GetAssertionRequest{
				RPID: "example.com", ClientDataHash: make([]byte, 32), AllowList: [][]byte{att.CredentialID},
				Extensions: fido.GetAssertionExtensions{HMACSecret: &fido.HMACSecretInput{Salt1: salt1, Salt2: salt2}},
			})
			if err != nil {
				t.Fatalf("GetAssertion with hmac-secret: %v", err)
			}
			if as[0].Extensions.HMACSecret == nil {
				t.Fatal("no hmac-secret output")
			}
			return as[0].Extensions.HMACSecret
		}
		one, again := get(d, salt1, salt2), get(d, salt1, salt2)
		if len(one.Output1) != 32 || len(one.Output2) != 32 {
			t.Fatalf("outputs of %d and %d bytes, want 32 each", len(one.Output1), len(one.Output2))
		}
		if !bytes.Equal(one.Output1, again.Output1) || !bytes.Equal(one.Output2, again.Output2) {
			t.Error("outputs differ for the same salts")
		}
		if bytes.Equal(one.Output1, one.Output2) {
			t.Error("the two salts give the same output")
		}
		if single := get(d, salt2, nil); !bytes.Equal(single.Output1, one.Output2) || single.Output2 != nil {
			t.Error("salt2 alone does not give the output it gave as the second salt")
		}
		// fidokit's own client, on the same key and credential, derives
		// the same secrets: two independent hosts agree.
		own, err := k.Open(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer own.Close()
		if theirs := get(own, salt1, salt2); !bytes.Equal(theirs.Output1, one.Output1) || !bytes.Equal(theirs.Output2, one.Output2) {
			t.Error("fido.Device and libfido2 derive different hmac-secret outputs")
		}
	})

	t.Run("closed", func(t *testing.T) {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)}); err == nil {
			t.Error("GetAssertion on a closed device succeeded")
		}
	})
}
