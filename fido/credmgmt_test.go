package fido_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// enrolled is a discoverable credential made for a test.
type enrolled struct {
	rpID, user string
	att        *fido.Attestation
}

// enrollAll makes a discoverable credential for each rpID/user pair.
func enrollAll(t *testing.T, d *fido.Device, pairs ...[2]string) []enrolled {
	t.Helper()
	var out []enrolled
	for _, p := range pairs {
		req := makeReq(p[0], p[1])
		req.Discoverable = true
		req.Extensions.LargeBlobKey = true
		if p[1] == "protected" {
			req.Extensions.CredProtect = fido.CredProtectUVRequired
		}
		att, err := d.MakeCredential(ctxT(t), req)
		if err != nil {
			t.Fatalf("MakeCredential(%s, %s): %v", p[0], p[1], err)
		}
		out = append(out, enrolled{p[0], p[1], att})
	}
	return out
}

func rpIDs(rps []fido.RelyingParty) []string {
	var ids []string
	for _, rp := range rps {
		ids = append(ids, rp.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestCredentialManagement(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			prompt := &pinPrompt{always: testPIN}
			d := v.open(t, k, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			creds := enrollAll(t, d,
				[2]string{"a.example", "alice"}, [2]string{"a.example", "bob"},
				[2]string{"b.example", "carol"}, [2]string{"c.example", "protected"})
			// A non-discoverable credential is not stored, so not listed.
			if _, err := d.MakeCredential(ctx, makeReq("d.example", "dave")); err != nil {
				t.Fatal(err)
			}

			prompt.script()
			md, err := d.CredentialsMetadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if md.Existing != 4 || md.Remaining != 25-4 {
				t.Errorf("CredentialsMetadata = %+v, want 4 existing, 21 remaining", md)
			}
			if r := prompt.requests(); len(r) != 1 || r[0].Op != "credentialManagement" || r[0].RPID != "" {
				t.Errorf("PIN requests %+v, want one for credentialManagement", r)
			}

			rps, err := d.RelyingParties(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := rpIDs(rps); !slices.Equal(got, []string{"a.example", "b.example", "c.example"}) {
				t.Errorf("RelyingParties = %v", got)
			}
			for _, rp := range rps {
				if rp.Name != "RP "+rp.ID {
					t.Errorf("RP %s named %q", rp.ID, rp.Name)
				}
			}

			list, err := d.Credentials(ctx, "a.example")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 {
				t.Fatalf("Credentials(a.example) = %d credentials, want 2", len(list))
			}
			for _, c := range creds {
				if c.rpID != "a.example" {
					continue
				}
				i := slices.IndexFunc(list, func(x fido.Credential) bool { return bytes.Equal(x.ID, c.att.CredentialID) })
				if i < 0 {
					t.Errorf("%s's credential not listed", c.user)
					continue
				}
				got := list[i]
				if got.User.Name != c.user || string(got.User.ID) != "id-"+c.user || got.User.DisplayName != "User "+c.user {
					t.Errorf("user = %+v", got.User)
				}
				if got.RP.ID != "a.example" || !bytes.Equal(got.PublicKey, c.att.PublicKey) || got.Algorithm != fido.ES256 {
					t.Errorf("credential %+v does not match the attestation", got)
				}
				if !bytes.Equal(got.LargeBlobKey, c.att.Extensions.LargeBlobKey) {
					t.Error("largeBlobKey differs from the one made")
				}
			}
			list, err = d.Credentials(ctx, "c.example")
			if err != nil || len(list) != 1 || list[0].CredProtect != fido.CredProtectUVRequired {
				t.Errorf("Credentials(c.example) = %+v, %v; want one with credProtect 3", list, err)
			}
			if list, err := d.Credentials(ctx, "none.example"); err != nil || len(list) != 0 {
				t.Errorf("Credentials of an unknown RP = %v, %v; want none", list, err)
			}

			// Update a user's names.
			alice := creds[0].att.CredentialID
			if err := d.UpdateUser(ctx, alice, fido.User{ID: []byte("id-alice"), Name: "alice@new", DisplayName: "Alice New"}); err != nil {
				t.Fatal(err)
			}
			list, _ = d.Credentials(ctx, "a.example")
			i := slices.IndexFunc(list, func(x fido.Credential) bool { return bytes.Equal(x.ID, alice) })
			if i < 0 || list[i].User.Name != "alice@new" || list[i].User.DisplayName != "Alice New" {
				t.Errorf("after UpdateUser: %+v", list)
			}
			if err := d.UpdateUser(ctx, alice, fido.User{ID: []byte("someone else")}); !errors.Is(err, fido.StatusInvalidParameter) {
				t.Errorf("UpdateUser with another user ID = %v, want StatusInvalidParameter", err)
			}
			if err := d.UpdateUser(ctx, []byte("no such credential"), fido.User{ID: []byte("id-alice")}); !errors.Is(err, fido.StatusNoCredentials) {
				t.Errorf("UpdateUser of an unknown credential = %v, want StatusNoCredentials", err)
			}

			// Delete across RPs.
			if err := d.DeleteCredential(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if list, _ := d.Credentials(ctx, "a.example"); len(list) != 1 || list[0].User.Name != "bob" {
				t.Errorf("after deleting alice, a.example has %+v", list)
			}
			if err := d.DeleteCredential(ctx, creds[2].att.CredentialID); err != nil {
				t.Fatal(err)
			}
			rps, _ = d.RelyingParties(ctx)
			if got := rpIDs(rps); !slices.Equal(got, []string{"a.example", "c.example"}) {
				t.Errorf("after deleting b.example's only credential, RelyingParties = %v", got)
			}
			if err := d.DeleteCredential(ctx, alice); !errors.Is(err, fido.StatusNoCredentials) {
				t.Errorf("deleting again = %v, want StatusNoCredentials", err)
			}
			if md, _ := d.CredentialsMetadata(ctx); md.Existing != 2 {
				t.Errorf("after two deletions, %d existing", md.Existing)
			}
			// The deleted credential no longer signs.
			if _, err := d.GetAssertion(ctx, getReq("a.example", alice)); !errors.Is(err, fido.StatusNoCredentials) {
				t.Errorf("GetAssertion with a deleted credential = %v, want StatusNoCredentials", err)
			}
			for _, d := range []error{d.DeleteCredential(ctx, nil), d.UpdateUser(ctx, alice, fido.User{})} {
				if !errors.Is(d, fido.ErrInvalidRequest) {
					t.Errorf("empty ID or user: %v, want ErrInvalidRequest", d)
				}
			}
			if _, err := d.Credentials(ctx, ""); !errors.Is(err, fido.ErrInvalidRequest) {
				t.Errorf("Credentials(\"\") = %v, want ErrInvalidRequest", err)
			}
		})
	}
}

func TestCredentialManagementErrors(t *testing.T) {
	ctx := ctxT(t)
	t.Run("no PIN set", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{}), false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
		if _, err := d.RelyingParties(ctx); !errors.Is(err, fido.StatusPINNotSet) {
			t.Errorf("RelyingParties = %v, want StatusPINNotSet", err)
		}
	})
	t.Run("no callback", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{PIN: testPIN}), false, fido.Prompt{})
		if _, err := d.CredentialsMetadata(ctx); !errors.Is(err, fido.ErrPINRequired) {
			t.Errorf("CredentialsMetadata = %v, want ErrPINRequired", err)
		}
	})
	t.Run("wrong PIN", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{PIN: testPIN}), false, fido.Prompt{PIN: (&pinPrompt{answers: []string{wrongPIN}}).ask})
		_, err := d.Credentials(ctx, "example.com")
		wantPINError(t, err, fido.StatusPINInvalid, 7)
	})
	t.Run("U2F only", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{U2FOnly: true}), false, fido.Prompt{})
		if _, err := d.RelyingParties(ctx); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("RelyingParties = %v, want ErrNotSupported", err)
		}
	})
	t.Run("no clientPin", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{NoClientPIN: true}), false, fido.Prompt{})
		if _, err := d.RelyingParties(ctx); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("RelyingParties = %v, want ErrNotSupported", err)
		}
	})
}

// TestCredentialManagementPermissions presents tokens at the wire that
// the key must refuse: one without the cm permission, one bound to
// another RP.
func TestCredentialManagementPermissions(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			d := v.open(t, k, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
			ctx := ctxT(t)
			enrollAll(t, d, [2]string{"a.example", "alice"}, [2]string{"b.example", "bob"})
			tests := []struct {
				name   string
				perms  pinuv.Permission
				bound  string
				rpID   string
				wantOK bool
			}{
				{"mc token", pinuv.PermMakeCredential, "a.example", "a.example", false},
				{"ga|mc token", pinuv.PermGetAssertion | pinuv.PermMakeCredential, "", "a.example", false},
				{"cm token for RP A, used for RP B", pinuv.PermCredentialManagement, "a.example", "b.example", false},
				{"cm token for RP A", pinuv.PermCredentialManagement, "a.example", "a.example", true},
				{"unbound cm token", pinuv.PermCredentialManagement, "", "b.example", true},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tok, err := fido.Token(ctx, d, tt.perms, tt.bound)
					if err != nil {
						t.Fatal(err)
					}
					list, err := fido.CredentialsWithToken(ctx, d, tok, tt.rpID)
					if tt.wantOK {
						if err != nil || len(list) != 1 {
							t.Errorf("Credentials = %v, %v; want one", list, err)
						}
						return
					}
					if !errors.Is(err, fido.StatusPINAuthInvalid) && !errors.Is(err, fido.StatusUnauthorizedPermission) {
						t.Errorf("Credentials = %v, want the token refused", err)
					}
				})
			}
		})
	}
}

// TestCredentialManagementPreview checks a CTAP 2.0 key that offers the
// prototype command 0x41 (credentialMgmtPreview).
func TestCredentialManagementPreview(t *testing.T) {
	for _, socket := range []bool{false, true} {
		t.Run(map[bool]string{false: "inprocess", true: "socket"}[socket], func(t *testing.T) {
			k := newKey(t, &virtual.Config{CTAPVersion: virtual.CTAP20, PIN: testPIN})
			d := openWithPrompt(t, k, socket, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
			ctx := ctxT(t)
			info, err := d.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := info.Option("credentialMgmtPreview"); !ok {
				t.Fatal("the CTAP 2.0 virtual key does not offer credentialMgmtPreview")
			}
			for _, u := range []string{"alice", "bob"} {
				req := makeReq("example.com", u)
				req.Discoverable = true
				if _, err := d.MakeCredential(ctx, req); err != nil {
					t.Fatal(err)
				}
			}
			rps, err := d.RelyingParties(ctx)
			if err != nil || len(rps) != 1 || rps[0].ID != "example.com" {
				t.Fatalf("RelyingParties = %+v, %v", rps, err)
			}
			list, err := d.Credentials(ctx, "example.com")
			if err != nil || len(list) != 2 {
				t.Fatalf("Credentials = %+v, %v", list, err)
			}
			if err := d.DeleteCredential(ctx, list[0].ID); err != nil {
				t.Fatal(err)
			}
			if list, err := d.Credentials(ctx, "example.com"); err != nil || len(list) != 1 {
				t.Errorf("after delete, Credentials = %+v, %v", list, err)
			}
		})
	}
}
