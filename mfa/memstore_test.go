package mfa_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/storetest"
	"github.com/fidokit/fidokit/webauthn"
)

// The memory store passes the contract suites the SQL stores pass: the
// relying party's and the MFA one, with races on one shared store.
func TestMemoryStoreContract(t *testing.T) {
	require.Implements(t, (*mfa.Store)(nil), mfa.NewMemoryStore())
	storetest.Run(t, func(*testing.T) webauthn.Store { return mfa.NewMemoryStore() })
	storetest.RunMFA(t, func(*testing.T) mfa.Store { return mfa.NewMemoryStore() })
	s := mfa.NewMemoryStore()
	storetest.RunMFAShared(t, s, s)
}
