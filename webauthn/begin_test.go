package webauthn_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// readCounter is a Store that counts the reads a sign-in's begin makes;
// it hides the store's optional interfaces, so that the relying party
// reads one thing after another.
type readCounter struct {
	webauthn.Store
	user, userByName, credentials atomic.Int64
}

func (s *readCounter) User(ctx context.Context, id []byte) (*webauthn.User, error) {
	s.user.Add(1)
	return s.Store.User(ctx, id)
}

func (s *readCounter) UserByName(ctx context.Context, name string) (*webauthn.User, error) {
	s.userByName.Add(1)
	return s.Store.UserByName(ctx, name)
}

func (s *readCounter) Credentials(ctx context.Context, userID []byte) ([]*webauthn.Credential, error) {
	s.credentials.Add(1)
	return s.Store.Credentials(ctx, userID)
}

// beginCounter is a readCounter that is a BeginStore.
type beginCounter struct {
	*readCounter
	bs    webauthn.BeginStore
	calls atomic.Int64
}

func (s *beginCounter) UserWithCredentials(ctx context.Context, id []byte, name string) (*webauthn.User, []*webauthn.Credential, error) {
	s.calls.Add(1)
	return s.bs.UserWithCredentials(ctx, id, name)
}

var _ webauthn.BeginStore = (*beginCounter)(nil)

// TestBeginLoginReads: a sign-in's begin, by ID or by name, reads the
// user once, with their credentials in the same call when the store is
// a BeginStore; with either kind of store the options and the errors
// are the same.
func TestBeginLoginReads(t *testing.T) {
	for _, kind := range []string{"Store", "BeginStore"} {
		t.Run(kind, func(t *testing.T) {
			rc := &readCounter{}
			var bc *beginCounter
			e := newEnv(t, func(c *webauthn.Config) {
				mem := c.Store.(*webauthn.MemoryStore)
				rc.Store = mem
				c.Store = rc
				if kind == "BeginStore" {
					bc = &beginCounter{readCounter: rc, bs: mem}
					c.Store = bc
				}
			})
			alice := e.user("alice")
			e.user("bob") // no keys
			k := e.key(nil)
			active := e.register(k, alice, "one")
			off := e.register(e.key(nil), alice, "two")
			require.NoError(t, e.rp.DeactivateCredential(e.ctx, alice.ID, off.ID))
			rc.user.Store(0)
			rc.userByName.Store(0)
			rc.credentials.Store(0)

			begins := []struct {
				name  string
				begin func(ctx context.Context) (*webauthn.Begin, error)
			}{
				{"ByID", func(ctx context.Context) (*webauthn.Begin, error) { return e.rp.BeginLogin(ctx, alice.ID) }},
				{"ByName", func(ctx context.Context) (*webauthn.Begin, error) {
					return webauthn.BeginLoginByName(e.rp, ctx, "alice")
				}},
			}
			for _, bg := range begins {
				t.Run(bg.name, func(t *testing.T) {
					before := [3]int64{rc.user.Load(), rc.userByName.Load(), rc.credentials.Load()}
					var calls int64
					if bc != nil {
						calls = bc.calls.Load()
					}
					b, err := bg.begin(e.ctx)
					require.NoError(t, err)
					var opts struct {
						AllowCredentials []struct {
							ID string `json:"id"`
						} `json:"allowCredentials"`
					}
					require.NoError(t, json.Unmarshal(b.Options, &opts))
					require.Len(t, opts.AllowCredentials, 1, "the active key only")
					assert.Equal(t, b64(active.ID), opts.AllowCredentials[0].ID)
					after := [3]int64{rc.user.Load(), rc.userByName.Load(), rc.credentials.Load()}
					reads := [3]int64{after[0] - before[0], after[1] - before[1], after[2] - before[2]}
					switch {
					case bc != nil:
						assert.Equal(t, [3]int64{}, reads, "User, UserByName, Credentials calls")
						assert.EqualValues(t, 1, bc.calls.Load()-calls, "UserWithCredentials calls")
					case bg.name == "ByID":
						assert.Equal(t, [3]int64{1, 0, 1}, reads, "User, UserByName, Credentials calls")
					default:
						assert.Equal(t, [3]int64{0, 1, 1}, reads, "User, UserByName, Credentials calls")
					}
					// The sign-in it began finishes.
					resp, err := k.Get(e.ctx, b.Options)
					require.NoError(t, err)
					u, _, err := e.rp.FinishLogin(e.ctx, b.ChallengeID, resp)
					require.NoError(t, err)
					assert.Equal(t, alice.ID, u.ID)
				})
			}

			errs := []struct {
				name  string
				begin func() error
				want  error
			}{
				{"UnknownID", func() error { _, err := e.rp.BeginLogin(e.ctx, []byte("nobody")); return err }, webauthn.ErrUnknownUser},
				{"NilID", func() error { _, err := e.rp.BeginLogin(e.ctx, nil); return err }, webauthn.ErrInvalidRequest},
				{"NoKeysByID", func() error { _, err := e.rp.BeginLogin(e.ctx, e.users[1]); return err }, webauthn.ErrNoCredentials},
				{"UnknownName", func() error { _, err := webauthn.BeginLoginByName(e.rp, e.ctx, "carol"); return err }, webauthn.ErrUnknownUser},
				{"EmptyName", func() error { _, err := webauthn.BeginLoginByName(e.rp, e.ctx, ""); return err }, webauthn.ErrInvalidRequest},
				{"ControlInName", func() error { _, err := webauthn.BeginLoginByName(e.rp, e.ctx, "al\x00ice"); return err }, webauthn.ErrInvalidRequest},
				{"NoKeysByName", func() error { _, err := webauthn.BeginLoginByName(e.rp, e.ctx, "bob"); return err }, webauthn.ErrNoCredentials},
			}
			for _, tc := range errs {
				t.Run(tc.name, func(t *testing.T) {
					assert.ErrorIs(t, tc.begin(), tc.want)
				})
			}
		})
	}
}
