package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// BenchmarkStoreSignIn is the store's share of one sign-in, begin and
// finish: SaveChallenge, then the finish as the relying party makes it of
// a FinishStore (finish: ReadSignIn and FinishSignIn, one commit) or of a
// SignInStore (take: TakeSignIn and RecordSignIn, two). It reports the
// mean, median and 99th percentile of each half in microseconds, so that
// a rare slow commit (a checkpoint's fsync) shows beside the usual.
func BenchmarkStoreSignIn(b *testing.B) {
	b.Run("finish", func(b *testing.B) {
		benchStoreSignIn(b, func(s *Store, id string, cred []byte, now time.Time) error {
			_, got, _, err := s.ReadSignIn(b.Context(), id, cred, now)
			if err != nil {
				return err
			}
			taken, err := s.FinishSignIn(b.Context(), id, webauthn.SignIn{CredentialID: cred, OldCount: got.SignCount,
				NewCount: got.SignCount + 1, At: now})
			if err == nil && !taken {
				err = webauthn.ErrNotFound
			}
			return err
		})
	})
	b.Run("take", func(b *testing.B) {
		benchStoreSignIn(b, func(s *Store, id string, cred []byte, now time.Time) error {
			_, got, _, err := s.TakeSignIn(b.Context(), id, cred, now)
			if err != nil {
				return err
			}
			return s.RecordSignIn(b.Context(), webauthn.SignIn{CredentialID: cred, OldCount: got.SignCount,
				NewCount: got.SignCount + 1, At: now})
		})
	})
}

func benchStoreSignIn(b *testing.B, finish func(s *Store, id string, cred []byte, now time.Time) error) {
	ctx := b.Context()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "fidokit.db"))
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	now := time.Now()
	u := &webauthn.User{ID: []byte("user-1"), Name: "ada", Created: now}
	cred := &webauthn.Credential{ID: []byte("cred-1"), UserID: u.ID, Name: "key", PublicKey: make([]byte, 77),
		AttestationFormat: "none", AttestationType: "none", Created: now}
	require.NoError(b, s.CreateUserWithCredential(ctx, u, cred))
	limits := webauthn.ChallengeLimits{PerUser: 16, Total: 100000}
	begins := make([]time.Duration, 0, b.N)
	finishes := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	for i := range b.N {
		c := &webauthn.Challenge{ID: fmt.Sprintf("challenge-%d", i), Challenge: make([]byte, 32),
			Ceremony: webauthn.CeremonyLogin, UserID: u.ID, Session: make([]byte, 200), Expires: now.Add(5 * time.Minute)}
		start := time.Now()
		require.NoError(b, s.SaveChallenge(ctx, c, now, limits))
		mid := time.Now()
		require.NoError(b, finish(s, c.ID, cred.ID, now))
		end := time.Now()
		begins = append(begins, mid.Sub(start))
		finishes = append(finishes, end.Sub(mid))
	}
	cpu = processCPU(b) - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu)/float64(b.N)/float64(time.Microsecond), "cpu-us")
	report := func(name string, ds []time.Duration) {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		slices.Sort(ds)
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		b.ReportMetric(us(sum/time.Duration(len(ds))), name+"-us")
		b.ReportMetric(us(ds[len(ds)/2]), name+"-p50-us")
		b.ReportMetric(us(ds[len(ds)*99/100]), name+"-p99-us")
	}
	report("begin", begins)
	report("finish", finishes)
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadContext is a one-row read from the statement cache with a
// cancelable context, as a request's is: handed to database/sql and the
// driver (watched) and through readQuerier (not watched).
func BenchmarkReadContext(b *testing.B) {
	ctx := b.Context()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "fidokit.db"))
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	u := &webauthn.User{ID: []byte("user-1"), Name: "ada", Created: time.Now()}
	require.NoError(b, s.CreateUser(ctx, u))
	const query = `SELECT name FROM webauthn_users WHERE id = ?`
	for _, tc := range []struct {
		name string
		q    interface {
			QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
		}
	}{{"watched", s.q}, {"readQuerier", s.r}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var name string
				require.NoError(b, tc.q.QueryRowContext(ctx, query, u.ID).Scan(&name))
			}
		})
	}
}
