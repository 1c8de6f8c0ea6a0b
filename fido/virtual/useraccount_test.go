package virtual

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
)

// TestUserNamesOnlyForSeveralAccountsAfterUV is issue 13 item 12. CTAP 2.1
// §6.2.2, getAssertion's response member user (0x04): user identifiable
// information (name, displayName) must not be returned without user
// verification; "for single account per RP case, authenticator returns
// "id"", and only "for multiple accounts per RP case, where the
// authenticator does not have a display" does it return "id" as well as
// the other fields. So names go with UV and more than one account only,
// on getAssertion and on every getNextAssertion after it.
func TestUserNamesOnlyForSeveralAccountsAfterUV(t *testing.T) {
	const pin = "1234"
	type want struct {
		user  string
		names bool
	}
	for _, tt := range []struct {
		name     string
		accounts []string
		uv       bool
		allow    bool // name the newest credential in allowList
		want     []want
	}{
		{"one account, UV", []string{"alice"}, true, false, []want{{"alice", false}}},
		{"one account, no UV", []string{"alice"}, false, false, []want{{"alice", false}}},
		{"two accounts, UV", []string{"alice", "bob"}, true, false, []want{{"bob", true}, {"alice", true}}},
		{"two accounts, no UV", []string{"alice", "bob"}, false, false, []want{{"bob", false}, {"alice", false}}},
		{"allowList of one of two accounts, UV", []string{"alice", "bob"}, true, true, []want{{"bob", false}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range protocols {
				k := newTestKey(t, &Config{PIN: pin})
				for _, u := range tt.accounts {
					tok := pinToken(t, k, v, pin, 0x01, testRPID)
					makeCredential(t, k, withToken(v, tok, mcRequest(u, true)))
				}
				creds := k.Credentials()
				require.Len(t, creds, len(tt.accounts))
				var r *ctap.GetAssertionRequest
				if tt.allow {
					r = gaRequest(creds[len(creds)-1].ID)
				} else {
					r = gaRequest()
				}
				if tt.uv {
					r = withToken(v, pinToken(t, k, v, pin, 0x02, testRPID), r)
				}
				c := ctap.CmdGetAssertion
				for i, w := range tt.want {
					a, ad := getAssertion(t, k, c, r)
					c, r = ctap.CmdGetNextAssertion, nil
					require.NotNil(t, a.User, "assertion %d has no user", i)
					assert.Equal(t, tt.uv, ad.Flags&ctap.FlagUV != 0, "UV flag of assertion %d", i)
					assert.Equal(t, w.user, string(a.User.ID), "assertion %d", i)
					if w.names {
						assert.Equal(t, w.user+"@example.com", a.User.Name, "assertion %d", i)
						assert.Equal(t, "User "+w.user, a.User.DisplayName, "assertion %d", i)
					} else {
						assert.Empty(t, a.User.Name, "assertion %d: name of a single account or without UV", i)
						assert.Empty(t, a.User.DisplayName, "assertion %d: display name of a single account or without UV", i)
					}
				}
			}
		})
	}

	t.Run("through fido.Device", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: pin})
		ctx := context.Background()
		dev, err := k.Open(ctx, &fido.Opener{Prompt: fido.Prompt{
			PIN: func(context.Context, fido.PINRequest) (string, error) { return pin, nil },
		}})
		require.NoError(t, err)
		defer dev.Close()
		hash := sha256.Sum256([]byte("client data"))
		enroll := func(u string) {
			_, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: hash[:],
				RP: fido.RelyingParty{ID: testRPID}, User: fido.User{ID: []byte(u), Name: u, DisplayName: "User " + u},
				Discoverable: true, UserVerification: true})
			require.NoError(t, err)
		}
		signIn := func() []*fido.Assertion {
			as, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: testRPID, ClientDataHash: hash[:], UserVerification: true})
			require.NoError(t, err)
			return as
		}
		enroll("alice")
		as := signIn()
		require.Len(t, as, 1)
		require.True(t, as[0].UserVerified)
		assert.Equal(t, fido.User{ID: []byte("alice")}, *as[0].User, "a single account comes back as its ID")
		enroll("bob")
		as = signIn()
		require.Len(t, as, 2)
		assert.Equal(t, fido.User{ID: []byte("bob"), Name: "bob", DisplayName: "User bob"}, *as[0].User)
		assert.Equal(t, fido.User{ID: []byte("alice"), Name: "alice", DisplayName: "User alice"}, *as[1].User)
	})
}
