package storetest

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// This file checks [webauthn.BeginStore.UserWithCredentials], for the
// stores that have it: the user read by ID or by name with exactly what
// Credentials returns, from one point in time.

var userWithCredentialsTests = []test{
	{"ByIDAndByName", func(t *testing.T, s webauthn.Store) {
		bs := beginStore(t, s)
		u := mustUser(t, s)
		other := mustUser(t, s)
		mustCredential(t, s, other.ID) // not u's
		// Two with the same Created (insertion order breaks the tie),
		// one older, one deactivated, one with every optional field
		// empty.
		c1 := mustCredential(t, s, u.ID)
		c2 := mustCredential(t, s, u.ID)
		old := fullCredential(t, u.ID)
		old.Created = base
		require.NoError(t, s.AddCredential(t.Context(), old, 0))
		bare := &webauthn.Credential{
			ID: randBytes(t, 16), UserID: u.ID, PublicKey: randBytes(t, 77), Algorithm: -8,
			AttestationFormat: "none", AttestationType: "none", Created: base.Add(3 * time.Hour),
		}
		require.NoError(t, s.AddCredential(t.Context(), bare, 0))
		require.NoError(t, s.DeactivateCredential(t.Context(), u.ID, c2.ID, base.Add(4*time.Hour)))
		c2.Deactivated = base.Add(4 * time.Hour)
		want := []*webauthn.Credential{old, c1, c2, bare}

		for _, by := range []struct {
			name  string
			id    []byte
			uname string
		}{
			{"ID", u.ID, ""},
			{"IDWithOtherName", u.ID, other.Name}, // the ID decides
			{"Name", nil, u.Name},
		} {
			t.Run(by.name, func(t *testing.T) {
				gotU, gotC, err := bs.UserWithCredentials(t.Context(), by.id, by.uname)
				require.NoError(t, err)
				checkUser(t, "user", gotU, u)
				require.Len(t, gotC, len(want))
				for i := range want {
					checkCredential(t, fmt.Sprintf("credential %d", i), gotC[i], want[i])
				}
				fromCredentials, err := s.Credentials(t.Context(), u.ID)
				require.NoError(t, err)
				assert.Equal(t, fromCredentials, gotC, "the same as Credentials")
			})
		}
	}},
	{"NoCredentials", func(t *testing.T, s webauthn.Store) {
		bs := beginStore(t, s)
		u := mustUser(t, s)
		for _, by := range [][]byte{u.ID, nil} {
			gotU, gotC, err := bs.UserWithCredentials(t.Context(), by, u.Name)
			require.NoError(t, err)
			checkUser(t, "user", gotU, u)
			assert.NotNil(t, gotC, "none is an empty slice")
			assert.Empty(t, gotC)
		}
	}},
	{"NotFound", func(t *testing.T, s webauthn.Store) {
		bs := beginStore(t, s)
		u := mustUser(t, s)
		mustCredential(t, s, u.ID)
		for _, tc := range []struct {
			name string
			id   []byte
			user string
		}{
			{"UnknownID", randBytes(t, 32), ""},
			{"UnknownIDKnownName", randBytes(t, 32), u.Name},
			{"UnknownName", nil, randName(t, "nobody")},
			{"NameOtherCase", nil, "USER" + u.Name[len("user"):]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				gotU, gotC, err := bs.UserWithCredentials(t.Context(), tc.id, tc.user)
				assert.ErrorIs(t, err, webauthn.ErrNotFound)
				assert.Nil(t, gotU)
				assert.Nil(t, gotC)
			})
		}
	}},
	{"Copies", func(t *testing.T, s webauthn.Store) {
		bs := beginStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		gotU, gotC, err := bs.UserWithCredentials(t.Context(), u.ID, "")
		require.NoError(t, err)
		require.Len(t, gotC, 1)
		gotU.ID[0] ^= 0xff
		gotC[0].ID[0] ^= 0xff
		gotC[0].Transports[0] = "changed"
		again, againC, err := bs.UserWithCredentials(t.Context(), u.ID, "")
		require.NoError(t, err)
		checkUser(t, "user read again", again, u)
		checkCredential(t, "credential read again", againC[0], c)
	}},
	{"ConcurrentAdds", func(t *testing.T, s webauthn.Store) {
		raceUserWithCredentials(t, s, s)
	}},
}

func beginStore(t *testing.T, s webauthn.Store) webauthn.BeginStore {
	t.Helper()
	bs, ok := s.(webauthn.BeginStore)
	if !ok {
		t.Skipf("%T does not implement webauthn.BeginStore", s)
	}
	return bs
}

// raceUserWithCredentials: while credentials are added to one user one
// after another (through a) and some are deactivated, readers on either
// handle read the user with their credentials; each read sees the
// credentials added so far in order, a prefix of what is added, no
// credential twice and never a shorter list than its reader saw before.
func raceUserWithCredentials(t *testing.T, a, b webauthn.Store) {
	ba, bb := beginStore(t, a), beginStore(t, b)
	u := mustUser(t, a)
	const adds, readers = 24, 8
	added := make([]*webauthn.Credential, adds)
	for i := range added {
		c := fullCredential(t, u.ID)
		c.Created = base.Add(time.Duration(i) * time.Second)
		added[i] = c
	}
	var done atomic.Bool
	parallel(t, readers+1, func(i int) error {
		if i == readers {
			defer done.Store(true)
			for k, c := range added {
				if err := a.AddCredential(t.Context(), c, 0); err != nil {
					return fmt.Errorf("AddCredential %d: %w", k, err)
				}
				if k%3 == 0 {
					if err := a.DeactivateCredential(t.Context(), u.ID, c.ID, base); err != nil {
						return fmt.Errorf("DeactivateCredential %d: %w", k, err)
					}
				}
			}
			return nil
		}
		bs := ba
		if i%2 == 1 {
			bs = bb
		}
		seen := 0
		for last := false; !last; {
			last = done.Load()
			gotU, gotC, err := bs.UserWithCredentials(t.Context(), nil, u.Name)
			if err != nil {
				return fmt.Errorf("UserWithCredentials: %w", err)
			}
			if !bytes.Equal(gotU.ID, u.ID) {
				return fmt.Errorf("UserWithCredentials returned user %x, want %x", gotU.ID, u.ID)
			}
			if len(gotC) < seen || len(gotC) > adds {
				return fmt.Errorf("%d credentials after %d were seen (of %d)", len(gotC), seen, adds)
			}
			seen = len(gotC)
			for k, c := range gotC {
				if !bytes.Equal(c.ID, added[k].ID) || !bytes.Equal(c.UserID, u.ID) {
					return fmt.Errorf("credential %d of %d is not the %dth added", k, len(gotC), k)
				}
			}
		}
		if seen != adds {
			return fmt.Errorf("the last read saw %d credentials, want %d", seen, adds)
		}
		return nil
	})
	got, err := a.Credentials(t.Context(), u.ID)
	require.NoError(t, err)
	assert.Len(t, got, adds)
}
