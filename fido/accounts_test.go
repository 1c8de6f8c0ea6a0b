package fido_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// TestIssue13FiveHundredDiscoverableAccounts is issue 13 item 4: a
// discoverable sign-in returns every account the key holds for the
// relying party, not the newest 256, so the oldest can be chosen too.
func TestIssue13FiveHundredDiscoverableAccounts(t *testing.T) {
	const accounts = 500
	k := newKey(t, &virtual.Config{
		ResidentKeySlots: accounts + 10,
		// Fast to make: Ed25519 and no attestation signature.
		Algorithms:  []fido.Algorithm{fido.EdDSA},
		Attestation: virtual.AttestationNone,
	})
	d := openInProcess(t, k)
	ctx := context.Background()
	hash := make([]byte, 32)
	made := make([][]byte, accounts)
	for i := range made {
		name := fmt.Sprintf("user%03d", i)
		att, err := d.MakeCredential(ctx, &fido.MakeCredentialRequest{
			ClientDataHash: hash, RP: fido.RelyingParty{ID: testRPID},
			User:       fido.User{ID: []byte(name), Name: name},
			Algorithms: []fido.Algorithm{fido.EdDSA}, Discoverable: true,
		})
		require.NoError(t, err, "making account %d", i)
		made[i] = att.CredentialID
	}

	as, err := d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: testRPID, ClientDataHash: hash})
	require.NoError(t, err)
	require.Equal(t, accounts, len(as), "accounts offered for the sign-in")
	got := map[string]string{}
	for _, a := range as {
		require.NotNil(t, a.User)
		got[string(a.CredentialID)] = string(a.User.ID)
	}
	require.Len(t, got, accounts, "distinct credentials")
	for i, id := range made {
		assert.Equal(t, fmt.Sprintf("user%03d", i), got[string(id)], "account %d", i)
	}
	// Newest first: the oldest account comes last, and can be chosen.
	assert.Equal(t, made[0], as[accounts-1].CredentialID)
	assert.Equal(t, made[accounts-1], as[0].CredentialID)
}
