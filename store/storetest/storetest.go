// Package storetest checks that a [webauthn.Store] and an [mfa.Store]
// keep the contracts written in their documentation. Start with [Run]:
// call it from a test of your implementation with a function that opens
// an empty store. Stores that can be opened twice on one database (SQLite
// files, PostgreSQL servers) should also call [RunShared] with two such
// handles, which races them against each other as two servers would.
// A store that implements [mfa.Store] as well calls [RunMFA] and
// [RunMFAShared] the same way, and [RunNoPlaintext] with a dump of its
// database.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) webauthn.Store {
//			s, err := mystore.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// # What counts as equal
//
// Byte slices must come back byte for byte. A nil and an empty slice are
// the same value: a credential stored with nil or empty Transports, or a
// challenge with a nil or empty UserID or Session, reads back with length
// zero (the stores in this module return nil). Times must come back in
// UTC and within one microsecond of what was stored (stores may truncate
// to microseconds, as PostgreSQL does); the zero time must come back zero.
//
// The same holds for TOTP devices, enrollments and recovery codes: a
// sealed box, a salt or a hash comes back byte for byte, an empty Serial
// comes back empty.
//
// # Concurrency
//
// Run's and RunMFA's concurrent subtests start 50 to 100 goroutines on
// one store, so a store backed by a server needs a connection pool (or a
// server) that accepts that many waiting callers.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// base is a time with nanoseconds and a non-UTC zone, so that round trips
// check both normalisations.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("IST", 5*3600+1800))

// longAgo is the now of SaveChallenge calls that must not find any
// challenge expired.
var longAgo = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// noLimits are the ChallengeLimits of calls that test something else.
var noLimits = webauthn.ChallengeLimits{}

type test struct {
	name string
	fn   func(t *testing.T, s webauthn.Store)
}

// Run runs the contract tests, each as a subtest on a fresh, empty store
// from newStore. newStore should register any cleanup with t.Cleanup and
// fail t if the store cannot be opened.
func Run(t *testing.T, newStore func(t *testing.T) webauthn.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"User", userTests},
		{"Credential", credentialTests},
		{"SignIn", signInTests},
		{"Challenge", challengeTests},
		{"ChallengeLimits", challengeLimitTests},
		{"Context", contextTests},
		{"Concurrent", concurrentTests},
		{"TakeSignIn", takeSignInTests},
		{"FinishSignIn", finishSignInTests},
		{"UserWithCredentials", userWithCredentialsTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, newStore(t))
				})
			}
		})
	}
}

// RunShared runs the races that must hold across processes on a and b,
// two handles (two connection pools, two opened files) on one database:
// a challenge taken once in total (also by FinishSignIn, for a
// [webauthn.FinishStore]), a sign count that loses no update, a
// credential limit that holds. The database need not be empty; each
// subtest uses fresh random IDs. Passing the same store twice is allowed
// and checks only the single-handle case.
func RunShared(t *testing.T, a, b webauthn.Store) {
	t.Helper()
	t.Run("Visible", func(t *testing.T) { sharedVisible(t, a, b) })
	t.Run("TakeChallenge", func(t *testing.T) { raceTakeChallenge(t, a, b) })
	if _, ok := a.(webauthn.SignInStore); ok {
		t.Run("TakeSignIn", func(t *testing.T) { raceTakeSignIn(t, a, b) })
	}
	if _, ok := a.(webauthn.FinishStore); ok {
		t.Run("FinishSignIn", func(t *testing.T) { raceFinishSignIn(t, a, b) })
		t.Run("FinishSignInCount", func(t *testing.T) { raceFinishSignInCount(t, a, b) })
	}
	if _, ok := a.(webauthn.BeginStore); ok {
		t.Run("UserWithCredentials", func(t *testing.T) { raceUserWithCredentials(t, a, b) })
	}
	t.Run("RecordSignIn", func(t *testing.T) { raceRecordSignIn(t, a, b) })
	t.Run("AddCredentialLimit", func(t *testing.T) { raceAddCredentialLimit(t, a, b) })
	t.Run("SaveChallengePerUser", func(t *testing.T) { raceSaveChallengePerUser(t, a, b) })
}

// ---- fixtures ----

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randName(t testing.TB, prefix string) string {
	t.Helper()
	return fmt.Sprintf("%s-%x@example.com", prefix, randBytes(t, 6))
}

// mustUser stores a fresh user and returns it.
func mustUser(t *testing.T, s webauthn.Store) *webauthn.User {
	t.Helper()
	u := &webauthn.User{
		ID:          randBytes(t, 32),
		Name:        randName(t, "user"),
		DisplayName: "Ada Lovelace",
		Created:     base,
	}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// fullCredential returns a credential of userID with every field set to
// a distinctive value.
func fullCredential(t *testing.T, userID []byte) *webauthn.Credential {
	t.Helper()
	pk := randBytes(t, 77)
	pk[0], pk[1] = 0x00, 0xff // NUL and high bytes survive
	return &webauthn.Credential{
		ID:                randBytes(t, 48),
		UserID:            bytes.Clone(userID),
		Name:              "Blue YubiKey ✓",
		PublicKey:         pk,
		Algorithm:         -7,
		AAGUID:            randBytes(t, 16),
		AttestationFormat: "packed",
		AttestationType:   "basic_full",
		Transports:        []string{"usb", "nfc"},
		UserVerified:      true,
		BackupEligible:    true,
		BackupState:       true,
		SignCount:         41,
		CloneWarning:      false,
		Created:           base.Add(time.Hour),
		LastUsed:          base.Add(2 * time.Hour),
	}
}

// mustCredential stores a fresh credential for userID and returns it.
func mustCredential(t *testing.T, s webauthn.Store, userID []byte) *webauthn.Credential {
	t.Helper()
	c := fullCredential(t, userID)
	if err := s.AddCredential(t.Context(), c, 0); err != nil {
		t.Fatalf("AddCredential: %v", err)
	}
	return c
}

func mustChallenge(t *testing.T, s webauthn.Store, expires time.Time) *webauthn.Challenge {
	t.Helper()
	c := &webauthn.Challenge{
		ID:        fmt.Sprintf("ch-%x", randBytes(t, 12)),
		Challenge: randBytes(t, 32),
		Ceremony:  webauthn.CeremonyLogin,
		UserID:    randBytes(t, 16),
		Session:   []byte(`{"s":1}`),
		Expires:   expires,
	}
	if err := s.SaveChallenge(t.Context(), c, longAgo, noLimits); err != nil {
		t.Fatalf("SaveChallenge: %v", err)
	}
	return c
}

// ---- comparison ----

func timeEq(got, want time.Time) bool {
	if want.IsZero() || got.IsZero() {
		return want.IsZero() && got.IsZero()
	}
	d := got.Sub(want)
	return got.Location() == time.UTC && d > -time.Microsecond && d < time.Microsecond
}

type differ []string

func (d *differ) bytes(field string, got, want []byte) {
	if !bytes.Equal(got, want) {
		*d = append(*d, fmt.Sprintf("%s = %x, want %x", field, got, want))
	}
}

func (d *differ) time(field string, got, want time.Time) {
	if !timeEq(got, want) {
		*d = append(*d, fmt.Sprintf("%s = %v (%v), want %v (UTC, within 1µs)", field, got, got.Location(), want.UTC()))
	}
}

func (d *differ) value(field string, got, want any) {
	if got != want {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

func (d *differ) report(t *testing.T, what string) {
	t.Helper()
	for _, s := range *d {
		t.Errorf("%s: %s", what, s)
	}
}

func checkUser(t *testing.T, what string, got, want *webauthn.User) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil user", what)
	}
	var d differ
	d.bytes("ID", got.ID, want.ID)
	d.value("Name", got.Name, want.Name)
	d.value("DisplayName", got.DisplayName, want.DisplayName)
	d.time("Created", got.Created, want.Created)
	d.report(t, what)
}

func checkCredential(t *testing.T, what string, got, want *webauthn.Credential) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil credential", what)
	}
	var d differ
	d.bytes("ID", got.ID, want.ID)
	d.bytes("UserID", got.UserID, want.UserID)
	d.value("Name", got.Name, want.Name)
	d.bytes("PublicKey", got.PublicKey, want.PublicKey)
	d.value("Algorithm", got.Algorithm, want.Algorithm)
	d.bytes("AAGUID", got.AAGUID, want.AAGUID)
	d.value("AttestationFormat", got.AttestationFormat, want.AttestationFormat)
	d.value("AttestationType", got.AttestationType, want.AttestationType)
	if fmt.Sprint(got.Transports) != fmt.Sprint(want.Transports) || len(got.Transports) != len(want.Transports) {
		d = append(d, fmt.Sprintf("Transports = %q, want %q", got.Transports, want.Transports))
	}
	d.value("UserVerified", got.UserVerified, want.UserVerified)
	d.value("BackupEligible", got.BackupEligible, want.BackupEligible)
	d.value("BackupState", got.BackupState, want.BackupState)
	d.value("SignCount", got.SignCount, want.SignCount)
	d.value("CloneWarning", got.CloneWarning, want.CloneWarning)
	d.time("Deactivated", got.Deactivated, want.Deactivated)
	d.time("Created", got.Created, want.Created)
	d.time("LastUsed", got.LastUsed, want.LastUsed)
	d.report(t, what)
}

func checkChallenge(t *testing.T, what string, got, want *webauthn.Challenge) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil challenge", what)
	}
	var d differ
	d.value("ID", got.ID, want.ID)
	d.bytes("Challenge", got.Challenge, want.Challenge)
	d.value("Ceremony", got.Ceremony, want.Ceremony)
	d.bytes("UserID", got.UserID, want.UserID)
	d.bytes("Session", got.Session, want.Session)
	d.time("Expires", got.Expires, want.Expires)
	d.report(t, what)
}

// wantErr fails t unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// credentialIs checks that the stored credential still equals want.
func credentialIs(t *testing.T, s webauthn.Store, what string, want *webauthn.Credential) {
	t.Helper()
	got, err := s.Credential(t.Context(), want.ID)
	mustNil(t, what+": Credential", err)
	checkCredential(t, what, got, want)
}

// credentialGone checks that no credential with id is stored.
func credentialGone(t *testing.T, s webauthn.Store, what string, id []byte) {
	t.Helper()
	_, err := s.Credential(t.Context(), id)
	wantErr(t, what+": Credential", err, webauthn.ErrNotFound)
}

// countCredentials returns how many credentials userID holds.
func countCredentials(t *testing.T, s webauthn.Store, userID []byte) int {
	t.Helper()
	cs, err := s.Credentials(t.Context(), userID)
	mustNil(t, "Credentials", err)
	return len(cs)
}

// ---- users ----

var userTests = []test{
	{"WithCredential", func(t *testing.T, s webauthn.Store) {
		u := &webauthn.User{ID: randBytes(t, 32), Name: randName(t, "signup"), DisplayName: "Grace", Created: base}
		c := fullCredential(t, u.ID)
		mustNil(t, "CreateUserWithCredential", s.CreateUserWithCredential(t.Context(), u, c))
		got, err := s.User(t.Context(), u.ID)
		mustNil(t, "User", err)
		checkUser(t, "User", got, u)
		credentialIs(t, s, "Credential", c)

		// Each conflict leaves nothing behind: not the user, not the key.
		other := mustUser(t, s)
		for _, tc := range []struct {
			name string
			u    *webauthn.User
			c    func(id []byte) *webauthn.Credential
		}{
			{"TakenCredentialID", &webauthn.User{ID: randBytes(t, 32), Name: randName(t, "x"), Created: base},
				func(id []byte) *webauthn.Credential { d := fullCredential(t, id); d.ID = c.ID; return d }},
			{"TakenName", &webauthn.User{ID: randBytes(t, 32), Name: other.Name, Created: base},
				func(id []byte) *webauthn.Credential { return fullCredential(t, id) }},
			{"TakenID", &webauthn.User{ID: other.ID, Name: randName(t, "y"), Created: base},
				func(id []byte) *webauthn.Credential { return fullCredential(t, id) }},
		} {
			d := tc.c(tc.u.ID)
			wantErr(t, tc.name, s.CreateUserWithCredential(t.Context(), tc.u, d), webauthn.ErrExists)
			if tc.name != "TakenID" {
				if _, err := s.User(t.Context(), tc.u.ID); !errors.Is(err, webauthn.ErrNotFound) {
					t.Errorf("%s: user stored after a failed sign-up (err %v)", tc.name, err)
				}
			}
			if tc.name != "TakenCredentialID" {
				credentialGone(t, s, tc.name, d.ID)
			}
		}
		if n := countCredentials(t, s, other.ID); n != 0 {
			t.Errorf("other user holds %d credentials after failed sign-ups, want 0", n)
		}
		credentialIs(t, s, "Credential after conflicts", c)
	}},
	{"RoundTrip", func(t *testing.T, s webauthn.Store) {
		long := randBytes(t, 64)
		long[0], long[63] = 0, 0xff
		for _, u := range []*webauthn.User{
			{ID: long, Name: "ada@example.com", DisplayName: "Ada Lovelace ✓", Created: base},
			{ID: []byte{0}, Name: "one-byte", DisplayName: "", Created: base.Add(time.Nanosecond)},
			{ID: []byte("plain"), Name: "Ada@Example.com", DisplayName: "differs only in case", Created: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		} {
			mustNil(t, "CreateUser", s.CreateUser(t.Context(), u))
			got, err := s.User(t.Context(), u.ID)
			mustNil(t, "User", err)
			checkUser(t, "User", got, u)
			got, err = s.UserByName(t.Context(), u.Name)
			mustNil(t, "UserByName", err)
			checkUser(t, "UserByName", got, u)
		}
	}},
	{"DuplicateID", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		dup := &webauthn.User{ID: bytes.Clone(u.ID), Name: randName(t, "other"), DisplayName: "Other", Created: base.Add(time.Hour)}
		wantErr(t, "CreateUser", s.CreateUser(t.Context(), dup), webauthn.ErrExists)
		got, err := s.User(t.Context(), u.ID)
		mustNil(t, "User", err)
		checkUser(t, "User after failed CreateUser", got, u)
		_, err = s.UserByName(t.Context(), dup.Name)
		wantErr(t, "UserByName of rejected user", err, webauthn.ErrNotFound)
	}},
	{"DuplicateName", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		dup := &webauthn.User{ID: randBytes(t, 32), Name: u.Name, DisplayName: "Other", Created: base.Add(time.Hour)}
		wantErr(t, "CreateUser", s.CreateUser(t.Context(), dup), webauthn.ErrExists)
		_, err := s.User(t.Context(), dup.ID)
		wantErr(t, "User of rejected user", err, webauthn.ErrNotFound)
		got, err := s.UserByName(t.Context(), u.Name)
		mustNil(t, "UserByName", err)
		checkUser(t, "UserByName after failed CreateUser", got, u)
	}},
	{"NotFound", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		for _, id := range [][]byte{randBytes(t, 32), u.ID[:31], append(bytes.Clone(u.ID), 0), nil} {
			_, err := s.User(t.Context(), id)
			wantErr(t, fmt.Sprintf("User(%x)", id), err, webauthn.ErrNotFound)
		}
		for _, name := range []string{"nobody@example.com", u.Name[:len(u.Name)-1], u.Name + " ", "USER" + u.Name[4:], ""} {
			_, err := s.UserByName(t.Context(), name)
			wantErr(t, fmt.Sprintf("UserByName(%q)", name), err, webauthn.ErrNotFound)
		}
	}},
	{"Copies", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		want := *u
		want.ID = bytes.Clone(u.ID)
		u.ID[0] ^= 0xff // the caller reuses its slice after storing
		got, err := s.User(t.Context(), want.ID)
		mustNil(t, "User after caller changed its input", err)
		checkUser(t, "User", got, &want)
		got.ID[0] ^= 0xff // the caller changes a returned slice
		again, err := s.User(t.Context(), want.ID)
		mustNil(t, "User after caller changed a result", err)
		checkUser(t, "User", again, &want)
	}},
}

// ---- credentials ----

var credentialTests = []test{
	{"RoundTrip", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		full := fullCredential(t, u.ID)
		minimal := &webauthn.Credential{
			ID:        randBytes(t, 16),
			UserID:    u.ID,
			PublicKey: randBytes(t, 65),
			Algorithm: -8,
			Created:   base,
		}
		empty := fullCredential(t, u.ID)
		empty.Transports = []string{}
		empty.Name = ""
		extremes := fullCredential(t, u.ID)
		extremes.SignCount = 1<<32 - 1
		extremes.Algorithm = -65535
		extremes.AAGUID = make([]byte, 16)
		extremes.CloneWarning = true
		extremes.UserVerified, extremes.BackupEligible, extremes.BackupState = false, false, false
		extremes.Deactivated = base.Add(3 * time.Hour)
		extremes.Transports = []string{"usb", "nfc", "ble", "smart-card", "hybrid", "internal"}
		extremes.AttestationFormat, extremes.AttestationType = "none", "none"
		oneByte := fullCredential(t, u.ID)
		oneByte.ID = []byte{0}
		oneByte.Transports = []string{"usb"}
		for _, tc := range []struct {
			name string
			c    *webauthn.Credential
		}{
			{"full", full},
			{"minimal", minimal},
			{"empty transports and name", empty},
			{"extremes", extremes},
			{"one-byte ID", oneByte},
		} {
			mustNil(t, tc.name+": AddCredential", s.AddCredential(t.Context(), tc.c, 0))
			got, err := s.Credential(t.Context(), tc.c.ID)
			mustNil(t, tc.name+": Credential", err)
			checkCredential(t, tc.name, got, tc.c)
			if got.Active() != tc.c.Active() {
				t.Errorf("%s: Active() = %v, want %v", tc.name, got.Active(), tc.c.Active())
			}
		}
		list, err := s.Credentials(t.Context(), u.ID)
		mustNil(t, "Credentials", err)
		if len(list) != 5 {
			t.Fatalf("Credentials: %d, want 5", len(list))
		}
		for _, c := range list {
			if bytes.Equal(c.ID, full.ID) {
				checkCredential(t, "Credentials[full]", c, full)
			}
		}
	}},
	{"UnknownUser", func(t *testing.T, s webauthn.Store) {
		c := fullCredential(t, randBytes(t, 32))
		for _, limit := range []int{0, 5} {
			wantErr(t, "AddCredential", s.AddCredential(t.Context(), c, limit), webauthn.ErrNotFound)
			credentialGone(t, s, "after failed AddCredential", c.ID)
		}
		if n := countCredentials(t, s, c.UserID); n != 0 {
			t.Errorf("unknown user holds %d credentials", n)
		}
	}},
	{"DuplicateID", func(t *testing.T, s webauthn.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		orig := mustCredential(t, s, alice.ID)
		for _, tc := range []struct {
			name  string
			owner []byte
			limit int
		}{
			{"same user", alice.ID, 0},
			{"other user", bob.ID, 0},
			{"other user with limit", bob.ID, 3},
		} {
			dup := fullCredential(t, tc.owner)
			dup.ID = bytes.Clone(orig.ID)
			wantErr(t, tc.name+": AddCredential", s.AddCredential(t.Context(), dup, tc.limit), webauthn.ErrExists)
			credentialIs(t, s, tc.name+": original", orig)
		}
		if n := countCredentials(t, s, alice.ID); n != 1 {
			t.Errorf("alice holds %d credentials, want 1", n)
		}
		if n := countCredentials(t, s, bob.ID); n != 0 {
			t.Errorf("bob holds %d credentials, want 0", n)
		}
	}},
	{"Limit", func(t *testing.T, s webauthn.Store) {
		for _, tc := range []struct {
			name   string
			limit  int
			add    int // how many succeed
			capped bool
		}{
			{"limit 1", 1, 1, true},
			{"limit 3", 3, 3, true},
			{"zero is unlimited", 0, 20, false},
			{"negative is unlimited", -1, 20, false},
		} {
			u := mustUser(t, s)
			for i := range tc.add {
				c := fullCredential(t, u.ID)
				c.Created = base.Add(time.Duration(i) * time.Minute)
				mustNil(t, fmt.Sprintf("%s: AddCredential #%d", tc.name, i+1), s.AddCredential(t.Context(), c, tc.limit))
			}
			if !tc.capped {
				if n := countCredentials(t, s, u.ID); n != tc.add {
					t.Errorf("%s: %d credentials, want %d", tc.name, n, tc.add)
				}
				continue
			}
			over := fullCredential(t, u.ID)
			wantErr(t, tc.name+": AddCredential over the limit", s.AddCredential(t.Context(), over, tc.limit), webauthn.ErrLimit)
			credentialGone(t, s, tc.name+": over the limit", over.ID)
			if n := countCredentials(t, s, u.ID); n != tc.limit {
				t.Errorf("%s: %d credentials, want %d", tc.name, n, tc.limit)
			}
			// A higher limit, or another user, is not affected.
			mustNil(t, tc.name+": AddCredential with a higher limit", s.AddCredential(t.Context(), over, tc.limit+1))
			other := mustUser(t, s)
			mustNil(t, tc.name+": another user", s.AddCredential(t.Context(), fullCredential(t, other.ID), tc.limit))
		}

		// Deactivated credentials count; deleted ones do not.
		u := mustUser(t, s)
		a, b := mustCredential(t, s, u.ID), mustCredential(t, s, u.ID)
		mustNil(t, "DeactivateCredential", s.DeactivateCredential(t.Context(), u.ID, a.ID, base))
		wantErr(t, "AddCredential with a deactivated key at the limit", s.AddCredential(t.Context(), fullCredential(t, u.ID), 2), webauthn.ErrLimit)
		mustNil(t, "DeleteCredential", s.DeleteCredential(t.Context(), u.ID, b.ID))
		mustNil(t, "AddCredential after a delete", s.AddCredential(t.Context(), fullCredential(t, u.ID), 2))
	}},
	{"NotFound", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		for _, id := range [][]byte{randBytes(t, 48), c.ID[:47], u.ID, nil} {
			_, err := s.Credential(t.Context(), id)
			wantErr(t, fmt.Sprintf("Credential(%x)", id), err, webauthn.ErrNotFound)
		}
	}},
	{"ListOrder", func(t *testing.T, s webauthn.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		// Inserted out of order; listed oldest first.
		offsets := []time.Duration{3 * time.Hour, time.Hour, 5 * time.Hour, time.Microsecond, 2 * time.Hour}
		byOffset := map[time.Duration]*webauthn.Credential{}
		for _, off := range offsets {
			c := fullCredential(t, alice.ID)
			c.Created = base.Add(off)
			mustNil(t, "AddCredential", s.AddCredential(t.Context(), c, 0))
			byOffset[off] = c
			mustCredential(t, s, bob.ID) // interleaved with another user's
		}
		want := []time.Duration{time.Microsecond, time.Hour, 2 * time.Hour, 3 * time.Hour, 5 * time.Hour}
		got, err := s.Credentials(t.Context(), alice.ID)
		mustNil(t, "Credentials", err)
		if len(got) != len(want) {
			t.Fatalf("Credentials: %d, want %d", len(got), len(want))
		}
		for i, off := range want {
			checkCredential(t, fmt.Sprintf("Credentials[%d]", i), got[i], byOffset[off])
		}
		if n := countCredentials(t, s, bob.ID); n != len(offsets) {
			t.Errorf("bob: %d credentials, want %d", n, len(offsets))
		}
	}},
	{"ListNone", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		for _, tc := range []struct {
			name string
			id   []byte
		}{
			{"user without credentials", u.ID},
			{"unknown user", randBytes(t, 32)},
			{"nil user ID", nil},
		} {
			got, err := s.Credentials(t.Context(), tc.id)
			mustNil(t, tc.name, err)
			if got == nil || len(got) != 0 {
				t.Errorf("%s: Credentials = %#v, want an empty non-nil slice", tc.name, got)
			}
		}
	}},
	{"Copies", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		c := fullCredential(t, u.ID)
		mustNil(t, "AddCredential", s.AddCredential(t.Context(), c, 0))
		want := *c
		want.ID, want.UserID, want.PublicKey, want.AAGUID = bytes.Clone(c.ID), bytes.Clone(c.UserID), bytes.Clone(c.PublicKey), bytes.Clone(c.AAGUID)
		want.Transports = append([]string(nil), c.Transports...)
		// The caller reuses every slice it passed in.
		c.ID[0] ^= 0xff
		c.UserID[0] ^= 0xff
		c.PublicKey[0] ^= 0xff
		c.AAGUID[0] ^= 0xff
		c.Transports[0] = "ble"
		credentialIs(t, s, "after the caller changed its input", &want)
		// The caller changes what Credential and Credentials returned.
		got, err := s.Credential(t.Context(), want.ID)
		mustNil(t, "Credential", err)
		got.PublicKey[0] ^= 0xff
		got.AAGUID[0] ^= 0xff
		got.UserID[0] ^= 0xff
		got.Transports[0] = "ble"
		list, err := s.Credentials(t.Context(), want.UserID)
		mustNil(t, "Credentials", err)
		list[0].PublicKey[0] ^= 0xff
		list[0].ID[0] ^= 0xff
		list[0].Transports[1] = "hybrid"
		credentialIs(t, s, "after the caller changed results", &want)
	}},
	{"Rename", func(t *testing.T, s webauthn.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		c := mustCredential(t, s, alice.ID)
		for _, name := range []string{"Green key", "", "Schlüssel 🔑"} {
			mustNil(t, "RenameCredential", s.RenameCredential(t.Context(), alice.ID, c.ID, name))
			c.Name = name
			credentialIs(t, s, "after RenameCredential", c)
		}
		for _, tc := range []struct {
			name     string
			user, id []byte
		}{
			{"other user's ID", bob.ID, c.ID},
			{"unknown user", randBytes(t, 32), c.ID},
			{"unknown credential", alice.ID, randBytes(t, 48)},
		} {
			wantErr(t, tc.name, s.RenameCredential(t.Context(), tc.user, tc.id, "stolen"), webauthn.ErrNotFound)
			credentialIs(t, s, tc.name+": unchanged", c)
		}
	}},
	{"Deactivate", func(t *testing.T, s webauthn.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		c := mustCredential(t, s, alice.ID)
		at := base.Add(24*time.Hour + 123456789)
		mustNil(t, "DeactivateCredential", s.DeactivateCredential(t.Context(), alice.ID, c.ID, at))
		c.Deactivated = at
		credentialIs(t, s, "after DeactivateCredential", c)
		got, _ := s.Credential(t.Context(), c.ID)
		if got.Active() {
			t.Errorf("Active() = true after DeactivateCredential")
		}
		for _, tc := range []struct {
			name     string
			user, id []byte
			at       time.Time
		}{
			{"other user's ID reactivating", bob.ID, c.ID, time.Time{}},
			{"other user's ID deactivating", bob.ID, c.ID, base},
			{"unknown credential", alice.ID, randBytes(t, 48), base},
		} {
			wantErr(t, tc.name, s.DeactivateCredential(t.Context(), tc.user, tc.id, tc.at), webauthn.ErrNotFound)
			credentialIs(t, s, tc.name+": unchanged", c)
		}
		mustNil(t, "reactivating", s.DeactivateCredential(t.Context(), alice.ID, c.ID, time.Time{}))
		c.Deactivated = time.Time{}
		credentialIs(t, s, "after reactivating", c)
		got, _ = s.Credential(t.Context(), c.ID)
		if !got.Active() {
			t.Errorf("Active() = false after reactivating")
		}
		// Deactivating twice keeps the latest time.
		mustNil(t, "DeactivateCredential", s.DeactivateCredential(t.Context(), alice.ID, c.ID, base))
		mustNil(t, "DeactivateCredential", s.DeactivateCredential(t.Context(), alice.ID, c.ID, at))
		c.Deactivated = at
		credentialIs(t, s, "deactivated again", c)
	}},
	{"Delete", func(t *testing.T, s webauthn.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		c := mustCredential(t, s, alice.ID)
		keep := mustCredential(t, s, alice.ID)
		for _, tc := range []struct {
			name     string
			user, id []byte
		}{
			{"other user's ID", bob.ID, c.ID},
			{"unknown user", randBytes(t, 32), c.ID},
			{"unknown credential", alice.ID, randBytes(t, 48)},
		} {
			wantErr(t, tc.name, s.DeleteCredential(t.Context(), tc.user, tc.id), webauthn.ErrNotFound)
			credentialIs(t, s, tc.name+": unchanged", c)
		}
		mustNil(t, "DeleteCredential", s.DeleteCredential(t.Context(), alice.ID, c.ID))
		credentialGone(t, s, "after DeleteCredential", c.ID)
		wantErr(t, "second DeleteCredential", s.DeleteCredential(t.Context(), alice.ID, c.ID), webauthn.ErrNotFound)
		credentialIs(t, s, "the other credential", keep)
		if n := countCredentials(t, s, alice.ID); n != 1 {
			t.Errorf("%d credentials after delete, want 1", n)
		}
		// The ID is free again.
		again := fullCredential(t, bob.ID)
		again.ID = bytes.Clone(c.ID)
		mustNil(t, "AddCredential reusing a deleted ID", s.AddCredential(t.Context(), again, 0))
		credentialIs(t, s, "re-added", again)
	}},
}

// ---- sign-ins ----

func signIn(id []byte, oldCount, newCount uint32, bs bool, at time.Time) webauthn.SignIn {
	return webauthn.SignIn{CredentialID: id, OldCount: oldCount, NewCount: newCount, BackupState: bs, At: at}
}

var signInTests = []test{
	{"RecordSignIn", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		at := base.Add(48*time.Hour + 987654321)
		for _, tc := range []struct {
			name        string
			setup       func(c *webauthn.Credential) // before storing
			in          func(c *webauthn.Credential) webauthn.SignIn
			err         error
			count       uint32
			backupState bool
		}{
			{
				name:  "match",
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
				count: 42,
			},
			{
				name:        "match sets BS",
				setup:       func(c *webauthn.Credential) { c.BackupState = false },
				in:          func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 1000, true, at) },
				count:       1000,
				backupState: true,
			},
			{
				name:  "counter-less key stays at zero",
				setup: func(c *webauthn.Credential) { c.SignCount, c.LastUsed = 0, time.Time{} },
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 0, 0, false, at) },
				count: 0,
			},
			{
				name:  "largest counter",
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 1<<32-1, false, at) },
				count: 1<<32 - 1,
			},
			{
				name: "stale count",
				in:   func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 40, 43, false, at) },
				err:  webauthn.ErrConflict,
			},
			{
				name: "newer count",
				in:   func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 42, 43, false, at) },
				err:  webauthn.ErrConflict,
			},
			{
				name:  "deactivated",
				setup: func(c *webauthn.Credential) { c.Deactivated = base },
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
				err:   webauthn.ErrInactive,
			},
			{
				name: "unknown",
				in: func(c *webauthn.Credential) webauthn.SignIn {
					return signIn(append(bytes.Clone(c.ID), 1), 41, 42, false, at)
				},
				err: webauthn.ErrNotFound,
			},
		} {
			c := fullCredential(t, u.ID)
			if tc.setup != nil {
				tc.setup(c)
			}
			mustNil(t, tc.name+": AddCredential", s.AddCredential(t.Context(), c, 0))
			err := s.RecordSignIn(t.Context(), tc.in(c))
			want := *c
			if tc.err != nil {
				wantErr(t, tc.name, err, tc.err)
			} else {
				mustNil(t, tc.name, err)
				want.SignCount, want.BackupState, want.LastUsed = tc.count, tc.backupState, at
			}
			credentialIs(t, s, tc.name, &want)
		}
	}},
	{"RecordSignInSequence", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		for i := range 5 {
			at := base.Add(time.Duration(i+1) * time.Minute)
			in := webauthn.SignIn{CredentialID: c.ID, OldCount: c.SignCount, NewCount: c.SignCount + 3, BackupState: i%2 == 0, At: at}
			mustNil(t, fmt.Sprintf("RecordSignIn #%d", i), s.RecordSignIn(t.Context(), in))
			c.SignCount, c.BackupState, c.LastUsed = in.NewCount, in.BackupState, at
			credentialIs(t, s, fmt.Sprintf("after sign-in #%d", i), c)
			// Replaying the same update now conflicts.
			wantErr(t, "replayed RecordSignIn", s.RecordSignIn(t.Context(), in), webauthn.ErrConflict)
		}
		// Reactivated keys sign in again.
		mustNil(t, "DeactivateCredential", s.DeactivateCredential(t.Context(), u.ID, c.ID, base))
		in := webauthn.SignIn{CredentialID: c.ID, OldCount: c.SignCount, NewCount: c.SignCount + 1, At: base}
		wantErr(t, "RecordSignIn while deactivated", s.RecordSignIn(t.Context(), in), webauthn.ErrInactive)
		mustNil(t, "reactivating", s.DeactivateCredential(t.Context(), u.ID, c.ID, time.Time{}))
		mustNil(t, "RecordSignIn after reactivating", s.RecordSignIn(t.Context(), in))
	}},
	{"FlagClone", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		other := mustCredential(t, s, u.ID)
		for range 2 { // idempotent
			mustNil(t, "FlagClone", s.FlagClone(t.Context(), c.ID))
			c.CloneWarning = true
			credentialIs(t, s, "after FlagClone", c)
		}
		credentialIs(t, s, "other credential", other)
		wantErr(t, "FlagClone unknown", s.FlagClone(t.Context(), randBytes(t, 48)), webauthn.ErrNotFound)
		// The warning stays through later sign-ins.
		mustNil(t, "RecordSignIn", s.RecordSignIn(t.Context(), webauthn.SignIn{CredentialID: c.ID, OldCount: c.SignCount, NewCount: c.SignCount + 1, At: base}))
		got, err := s.Credential(t.Context(), c.ID)
		mustNil(t, "Credential", err)
		if !got.CloneWarning {
			t.Errorf("CloneWarning cleared by RecordSignIn")
		}
		// A deactivated key can still be flagged.
		mustNil(t, "DeactivateCredential", s.DeactivateCredential(t.Context(), u.ID, other.ID, base))
		mustNil(t, "FlagClone deactivated", s.FlagClone(t.Context(), other.ID))
	}},
	{"ClearCloneWarning", func(t *testing.T, s webauthn.Store) {
		ctx := t.Context()
		u, bob := mustUser(t, s), mustUser(t, s)
		c, other, bobs := mustCredential(t, s, u.ID), mustCredential(t, s, u.ID), mustCredential(t, s, bob.ID)
		for _, id := range [][]byte{c.ID, other.ID, bobs.ID} {
			require.NoError(t, s.FlagClone(ctx, id))
		}
		for range 2 { // clearing a clear flag changes nothing
			require.NoError(t, s.ClearCloneWarning(ctx, u.ID, c.ID))
			credentialIs(t, s, "after ClearCloneWarning", c)
		}
		other.CloneWarning, bobs.CloneWarning = true, true
		credentialIs(t, s, "the user's other credential", other)
		// Only the owner's credential: bob's is not found through alice,
		// nor an unknown one.
		assert.ErrorIs(t, s.ClearCloneWarning(ctx, u.ID, bobs.ID), webauthn.ErrNotFound)
		assert.ErrorIs(t, s.ClearCloneWarning(ctx, u.ID, randBytes(t, 48)), webauthn.ErrNotFound)
		assert.ErrorIs(t, s.ClearCloneWarning(ctx, randBytes(t, 32), c.ID), webauthn.ErrNotFound)
		credentialIs(t, s, "bob's credential", bobs)
		// A deactivated key can be cleared, and stays deactivated.
		require.NoError(t, s.DeactivateCredential(ctx, u.ID, other.ID, base))
		require.NoError(t, s.ClearCloneWarning(ctx, u.ID, other.ID))
		other.CloneWarning, other.Deactivated = false, base
		credentialIs(t, s, "deactivated credential after ClearCloneWarning", other)
	}},
}

// ---- challenges ----

var challengeTests = []test{
	{"RoundTrip", func(t *testing.T, s webauthn.Store) {
		now := base
		bin := randBytes(t, 256)
		bin[0], bin[1] = 0, 0xff
		for _, c := range []*webauthn.Challenge{
			{ID: "login", Challenge: randBytes(t, 32), Ceremony: webauthn.CeremonyLogin, UserID: randBytes(t, 64), Session: bin, Expires: now.Add(5 * time.Minute)},
			{ID: "registration", Challenge: randBytes(t, 32), Ceremony: webauthn.CeremonyRegistration, UserID: []byte{0}, Session: []byte(`{"user":"ada"}`), Expires: now.Add(time.Nanosecond * 1500)},
			{ID: "discoverable", Challenge: randBytes(t, 32), Ceremony: webauthn.CeremonyDiscoverable, UserID: nil, Session: nil, Expires: now.Add(time.Hour)},
			{ID: "big session", Challenge: randBytes(t, 16), Ceremony: webauthn.CeremonyLogin, Session: randBytes(t, 64<<10), Expires: now.Add(time.Hour)},
			{ID: "käse ✓ 🔑", Challenge: randBytes(t, 32), Ceremony: webauthn.CeremonyLogin, Session: []byte{}, Expires: now.Add(time.Hour)},
		} {
			mustNil(t, c.ID+": SaveChallenge", s.SaveChallenge(t.Context(), c, longAgo, noLimits))
			got, err := s.TakeChallenge(t.Context(), c.ID, now)
			mustNil(t, c.ID+": TakeChallenge", err)
			checkChallenge(t, c.ID, got, c)
		}
	}},
	{"TakeOnce", func(t *testing.T, s webauthn.Store) {
		c := mustChallenge(t, s, base.Add(time.Minute))
		other := mustChallenge(t, s, base.Add(time.Minute))
		got, err := s.TakeChallenge(t.Context(), c.ID, base)
		mustNil(t, "TakeChallenge", err)
		checkChallenge(t, "TakeChallenge", got, c)
		_, err = s.TakeChallenge(t.Context(), c.ID, base)
		wantErr(t, "second TakeChallenge", err, webauthn.ErrNotFound)
		got, err = s.TakeChallenge(t.Context(), other.ID, base)
		mustNil(t, "other TakeChallenge", err)
		checkChallenge(t, "other TakeChallenge", got, other)
		// The ID can be used again once taken.
		mustNil(t, "SaveChallenge reusing an ID", s.SaveChallenge(t.Context(), c, longAgo, noLimits))
	}},
	{"Unknown", func(t *testing.T, s webauthn.Store) {
		c := mustChallenge(t, s, base.Add(time.Minute))
		for _, id := range []string{"nope", c.ID[:len(c.ID)-1], c.ID + " ", ""} {
			_, err := s.TakeChallenge(t.Context(), id, base)
			wantErr(t, fmt.Sprintf("TakeChallenge(%q)", id), err, webauthn.ErrNotFound)
		}
		got, err := s.TakeChallenge(t.Context(), c.ID, base)
		mustNil(t, "TakeChallenge", err)
		checkChallenge(t, "TakeChallenge after misses", got, c)
	}},
	{"Duplicate", func(t *testing.T, s webauthn.Store) {
		c := mustChallenge(t, s, base.Add(time.Minute))
		dup := &webauthn.Challenge{ID: c.ID, Challenge: randBytes(t, 32), Ceremony: webauthn.CeremonyRegistration, Session: []byte("other"), Expires: base.Add(time.Hour)}
		wantErr(t, "SaveChallenge", s.SaveChallenge(t.Context(), dup, longAgo, noLimits), webauthn.ErrExists)
		got, err := s.TakeChallenge(t.Context(), c.ID, base)
		mustNil(t, "TakeChallenge", err)
		checkChallenge(t, "original after failed SaveChallenge", got, c)
	}},
	{"Expired", func(t *testing.T, s webauthn.Store) {
		expires := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		for _, tc := range []struct {
			name string
			now  time.Time
			err  error
		}{
			{"a microsecond before", expires.Add(-time.Microsecond), nil},
			{"an hour before, other zone", expires.Add(-time.Hour).In(time.FixedZone("X", -7*3600)), nil},
			{"exactly at", expires, webauthn.ErrExpired},
			{"exactly at, other zone", expires.In(time.FixedZone("Y", 3600)), webauthn.ErrExpired},
			{"after", expires.Add(time.Second), webauthn.ErrExpired},
		} {
			c := mustChallenge(t, s, expires)
			got, err := s.TakeChallenge(t.Context(), c.ID, tc.now)
			if tc.err == nil {
				mustNil(t, tc.name, err)
				checkChallenge(t, tc.name, got, c)
			} else {
				wantErr(t, tc.name, err, tc.err)
			}
			_, err = s.TakeChallenge(t.Context(), c.ID, expires.Add(-time.Hour))
			wantErr(t, tc.name+": TakeChallenge again", err, webauthn.ErrNotFound)
		}
	}},
	{"Copies", func(t *testing.T, s webauthn.Store) {
		c := mustChallenge(t, s, base.Add(time.Minute))
		want := *c
		want.Challenge, want.UserID, want.Session = bytes.Clone(c.Challenge), bytes.Clone(c.UserID), bytes.Clone(c.Session)
		c.Challenge[0] ^= 0xff
		c.UserID[0] ^= 0xff
		c.Session[0] ^= 0xff
		got, err := s.TakeChallenge(t.Context(), c.ID, base)
		mustNil(t, "TakeChallenge", err)
		checkChallenge(t, "after the caller changed its input", got, &want)
	}},
	{"Purge", func(t *testing.T, s webauthn.Store) {
		now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		n, err := s.PurgeChallenges(t.Context(), now)
		mustNil(t, "PurgeChallenges on empty store", err)
		if n != 0 {
			t.Errorf("PurgeChallenges on empty store = %d, want 0", n)
		}
		var expired, live []*webauthn.Challenge
		for _, d := range []time.Duration{-24 * time.Hour, -time.Second, -time.Microsecond, 0} {
			expired = append(expired, mustChallenge(t, s, now.Add(d)))
		}
		for _, d := range []time.Duration{time.Microsecond, time.Minute, 24 * time.Hour} {
			live = append(live, mustChallenge(t, s, now.Add(d)))
		}
		n, err = s.PurgeChallenges(t.Context(), now.In(time.FixedZone("Z", 9*3600)))
		mustNil(t, "PurgeChallenges", err)
		if n != len(expired) {
			t.Errorf("PurgeChallenges = %d, want %d", n, len(expired))
		}
		n, err = s.PurgeChallenges(t.Context(), now)
		mustNil(t, "second PurgeChallenges", err)
		if n != 0 {
			t.Errorf("second PurgeChallenges = %d, want 0", n)
		}
		early := now.Add(-48 * time.Hour)
		for _, c := range expired {
			_, err := s.TakeChallenge(t.Context(), c.ID, early)
			wantErr(t, "TakeChallenge of purged", err, webauthn.ErrNotFound)
		}
		for _, c := range live {
			got, err := s.TakeChallenge(t.Context(), c.ID, early)
			mustNil(t, "TakeChallenge of live", err)
			checkChallenge(t, "live after purge", got, c)
		}
	}},
}

// challengeFor returns an unsaved login challenge of userID (nil for a
// discoverable one) that expires at expires.
func challengeFor(t *testing.T, userID []byte, expires time.Time) *webauthn.Challenge {
	t.Helper()
	c := &webauthn.Challenge{
		ID:        fmt.Sprintf("ch-%x", randBytes(t, 12)),
		Challenge: randBytes(t, 32),
		Ceremony:  webauthn.CeremonyLogin,
		UserID:    bytes.Clone(userID),
		Expires:   expires,
	}
	if userID == nil {
		c.Ceremony = webauthn.CeremonyDiscoverable
	}
	return c
}

// taken checks what TakeChallenge gives for id at now: nil for the
// challenge, or the error.
func taken(t *testing.T, s webauthn.Store, id string, now time.Time) error {
	t.Helper()
	_, err := s.TakeChallenge(t.Context(), id, now)
	return err
}

var challengeLimitTests = []test{
	{"PerUser", func(t *testing.T, s webauthn.Store) {
		ctx, now := t.Context(), base
		lim := webauthn.ChallengeLimits{PerUser: 3}
		alice, bob := randBytes(t, 32), randBytes(t, 32)
		var held []*webauthn.Challenge
		for i := range 3 {
			c := challengeFor(t, alice, now.Add(time.Duration(i+1)*time.Minute))
			require.NoError(t, s.SaveChallenge(ctx, c, now, lim), "challenge %d of 3", i+1)
			held = append(held, c)
		}
		refused := challengeFor(t, alice, now.Add(time.Hour))
		require.ErrorIs(t, s.SaveChallenge(ctx, refused, now, lim), webauthn.ErrTooManyCeremonies)
		assert.ErrorIs(t, taken(t, s, refused.ID, now), webauthn.ErrNotFound, "the refused challenge was stored")
		// Other users and discoverable sign-ins are not limited by
		// alice's challenges; without a limit alice gets a fourth.
		for range 3 {
			require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, bob, now.Add(time.Hour)), now, lim))
		}
		for range 5 {
			require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, nil, now.Add(time.Hour)), now, lim))
		}
		assert.ErrorIs(t, s.SaveChallenge(ctx, challengeFor(t, alice, now.Add(time.Hour)), now, lim), webauthn.ErrTooManyCeremonies)
		assert.NoError(t, s.SaveChallenge(ctx, challengeFor(t, alice, now.Add(time.Hour)), now, noLimits))
		// Taking one frees a place.
		_, err := s.TakeChallenge(ctx, held[1].ID, now)
		require.NoError(t, err)
		c := challengeFor(t, alice, now.Add(time.Hour))
		require.NoError(t, s.SaveChallenge(ctx, c, now, webauthn.ChallengeLimits{PerUser: 4}))
		require.ErrorIs(t, s.SaveChallenge(ctx, challengeFor(t, alice, now.Add(time.Hour)), now, webauthn.ChallengeLimits{PerUser: 4}),
			webauthn.ErrTooManyCeremonies)
		// An expired one does not count: at held[0]'s expiry there is
		// room again.
		later := held[0].Expires
		require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, alice, now.Add(time.Hour)), later, webauthn.ChallengeLimits{PerUser: 4}))
	}},
	{"Total", func(t *testing.T, s webauthn.Store) {
		ctx, now := t.Context(), base
		lim := webauthn.ChallengeLimits{Total: 5, PerUser: 100}
		first := challengeFor(t, randBytes(t, 32), now.Add(time.Minute))
		require.NoError(t, s.SaveChallenge(ctx, first, now, lim))
		for i := range 4 {
			var user []byte
			if i%2 == 0 {
				user = randBytes(t, 32)
			}
			require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, user, now.Add(time.Hour)), now, lim), "challenge %d of 5", i+2)
		}
		for _, user := range [][]byte{nil, randBytes(t, 32)} {
			refused := challengeFor(t, user, now.Add(time.Hour))
			require.ErrorIs(t, s.SaveChallenge(ctx, refused, now, lim), webauthn.ErrTooManyCeremonies)
			assert.ErrorIs(t, taken(t, s, refused.ID, now), webauthn.ErrNotFound, "the refused challenge was stored")
		}
		// When first expires there is room again, and first is gone:
		// saving removed it.
		later := first.Expires.Add(time.Microsecond)
		require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, nil, now.Add(time.Hour)), later, lim))
		assert.ErrorIs(t, taken(t, s, first.ID, later), webauthn.ErrNotFound, "SaveChallenge left an expired challenge")
		require.ErrorIs(t, s.SaveChallenge(ctx, challengeFor(t, nil, now.Add(time.Hour)), later, lim), webauthn.ErrTooManyCeremonies)
		n, err := s.PurgeChallenges(ctx, now.Add(2*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 5, n, "challenges held at the limit")
	}},
	{"TotalWithExpired", func(t *testing.T, s webauthn.Store) {
		// The store is full, mostly of expired challenges: a save at a
		// later time succeeds.
		ctx, soon := t.Context(), base.Add(time.Minute)
		const total = 200
		for range total - 1 {
			require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, nil, soon), base, noLimits))
		}
		live := challengeFor(t, nil, base.Add(time.Hour))
		require.NoError(t, s.SaveChallenge(ctx, live, base, noLimits))
		lim := webauthn.ChallengeLimits{Total: total}
		require.ErrorIs(t, s.SaveChallenge(ctx, challengeFor(t, nil, base.Add(time.Hour)), base, lim), webauthn.ErrTooManyCeremonies)
		for i := range 3 {
			require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, nil, base.Add(time.Hour)), soon, lim), "save %d after the expiry", i+1)
		}
		_, err := s.TakeChallenge(ctx, live.ID, soon)
		assert.NoError(t, err, "the live challenge was removed")
	}},
	{"PurgedOnSave", func(t *testing.T, s webauthn.Store) {
		// Saving removes expired challenges, the oldest first, at least
		// 16 per call, without anyone calling PurgeChallenges.
		ctx := t.Context()
		var expired []*webauthn.Challenge
		for i := range 40 {
			c := challengeFor(t, randBytes(t, 8), base.Add(time.Duration(i)*time.Second))
			require.NoError(t, s.SaveChallenge(ctx, c, longAgo, noLimits))
			expired = append(expired, c)
		}
		now := base.Add(time.Hour)
		require.NoError(t, s.SaveChallenge(ctx, challengeFor(t, nil, now.Add(time.Hour)), now, noLimits))
		for i, c := range expired[:16] {
			assert.ErrorIs(t, taken(t, s, c.ID, now), webauthn.ErrNotFound, "expired challenge %d (of the oldest) still stored", i)
		}
		// The rest are expired if still there.
		for _, c := range expired[16:] {
			err := taken(t, s, c.ID, now)
			if !errors.Is(err, webauthn.ErrNotFound) {
				assert.ErrorIs(t, err, webauthn.ErrExpired)
			}
		}
	}},
}

// ---- context ----

var contextTests = []test{
	{"Canceled", func(t *testing.T, s webauthn.Store) {
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		newUser := &webauthn.User{ID: randBytes(t, 32), Name: randName(t, "canceled"), Created: base}
		newCred := fullCredential(t, u.ID)
		newCh := &webauthn.Challenge{ID: "canceled", Challenge: randBytes(t, 32), Ceremony: webauthn.CeremonyLogin, Expires: base.Add(time.Hour)}
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"CreateUser", func() error { return s.CreateUser(ctx, newUser) }},
			{"User", func() error { _, err := s.User(ctx, u.ID); return err }},
			{"UserByName", func() error { _, err := s.UserByName(ctx, u.Name); return err }},
			{"AddCredential", func() error { return s.AddCredential(ctx, newCred, 10) }},
			{"Credential", func() error { _, err := s.Credential(ctx, c.ID); return err }},
			{"Credentials", func() error { _, err := s.Credentials(ctx, u.ID); return err }},
			{"RenameCredential", func() error { return s.RenameCredential(ctx, u.ID, c.ID, "x") }},
			{"DeactivateCredential", func() error { return s.DeactivateCredential(ctx, u.ID, c.ID, base) }},
			{"DeleteCredential", func() error { return s.DeleteCredential(ctx, u.ID, c.ID) }},
			{"RecordSignIn", func() error {
				return s.RecordSignIn(ctx, webauthn.SignIn{CredentialID: c.ID, OldCount: c.SignCount, NewCount: c.SignCount + 1, At: base})
			}},
			{"FlagClone", func() error { return s.FlagClone(ctx, c.ID) }},
			{"ClearCloneWarning", func() error { return s.ClearCloneWarning(ctx, u.ID, c.ID) }},
			{"SaveChallenge", func() error { return s.SaveChallenge(ctx, newCh, base, webauthn.ChallengeLimits{PerUser: 5, Total: 5}) }},
			{"TakeChallenge", func() error { _, err := s.TakeChallenge(ctx, ch.ID, base); return err }},
			{"PurgeChallenges", func() error { _, err := s.PurgeChallenges(ctx, base.Add(48*time.Hour)); return err }},
		} {
			wantErr(t, tc.name+" with a canceled context", tc.call(), context.Canceled)
		}
		// Nothing changed.
		_, err := s.User(t.Context(), newUser.ID)
		wantErr(t, "User created under a canceled context", err, webauthn.ErrNotFound)
		credentialGone(t, s, "credential added under a canceled context", newCred.ID)
		credentialIs(t, s, "credential changed under a canceled context", c)
		_, err = s.TakeChallenge(t.Context(), newCh.ID, base)
		wantErr(t, "challenge saved under a canceled context", err, webauthn.ErrNotFound)
		got, err := s.TakeChallenge(t.Context(), ch.ID, base)
		mustNil(t, "challenge taken under a canceled context", err)
		checkChallenge(t, "challenge", got, ch)
	}},
}

// ---- concurrency ----

var concurrentTests = []test{
	{"TakeChallenge", func(t *testing.T, s webauthn.Store) { raceTakeChallenge(t, s, s) }},
	{"AddCredentialLimit", func(t *testing.T, s webauthn.Store) { raceAddCredentialLimit(t, s, s) }},
	{"RecordSignIn", func(t *testing.T, s webauthn.Store) { raceRecordSignIn(t, s, s) }},
	{"SaveChallengePerUser", func(t *testing.T, s webauthn.Store) { raceSaveChallengePerUser(t, s, s) }},
	{"CreateUserSameName", func(t *testing.T, s webauthn.Store) {
		const n = 20
		name := randName(t, "race")
		var wins atomic.Int32
		parallel(t, n, func(i int) error {
			err := s.CreateUser(t.Context(), &webauthn.User{ID: randBytes(t, 32), Name: name, Created: base})
			switch {
			case err == nil:
				wins.Add(1)
				return nil
			case errors.Is(err, webauthn.ErrExists):
				return nil
			}
			return err
		})
		if w := wins.Load(); w != 1 {
			t.Errorf("%d of %d concurrent CreateUser with one name succeeded, want 1", w, n)
		}
	}},
}

// parallel runs f(0) … f(n-1) in n goroutines released at once and
// fails t with any error they return.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// pick alternates between two handles.
func pick(i int, a, b webauthn.Store) webauthn.Store {
	if i%2 == 0 {
		return a
	}
	return b
}

func sharedVisible(t *testing.T, a, b webauthn.Store) {
	u := mustUser(t, a)
	got, err := b.User(t.Context(), u.ID)
	mustNil(t, "User through the other handle", err)
	checkUser(t, "User through the other handle", got, u)
	c := mustCredential(t, b, u.ID)
	credentialIs(t, a, "credential through the other handle", c)
	ch := mustChallenge(t, a, base.Add(time.Hour))
	taken, err := b.TakeChallenge(t.Context(), ch.ID, base)
	mustNil(t, "TakeChallenge through the other handle", err)
	checkChallenge(t, "challenge through the other handle", taken, ch)
	_, err = a.TakeChallenge(t.Context(), ch.ID, base)
	wantErr(t, "TakeChallenge through the first handle", err, webauthn.ErrNotFound)
}

// raceTakeChallenge: 50 goroutines take one challenge; exactly one wins.
func raceTakeChallenge(t *testing.T, a, b webauthn.Store) {
	const n = 50
	for round := range 3 {
		c := mustChallenge(t, a, base.Add(time.Hour))
		var wins atomic.Int32
		parallel(t, n, func(i int) error {
			got, err := pick(i, a, b).TakeChallenge(t.Context(), c.ID, base)
			switch {
			case err == nil:
				wins.Add(1)
				if !bytes.Equal(got.Challenge, c.Challenge) {
					return fmt.Errorf("TakeChallenge returned challenge %x, want %x", got.Challenge, c.Challenge)
				}
				return nil
			case errors.Is(err, webauthn.ErrNotFound):
				return nil
			}
			return fmt.Errorf("TakeChallenge: %w", err)
		})
		if w := wins.Load(); w != 1 {
			t.Errorf("round %d: %d of %d concurrent TakeChallenge calls succeeded, want exactly 1", round, w, n)
		}
	}
}

// raceAddCredentialLimit: 50 goroutines add a credential for one user
// with limit 8; exactly 8 succeed.
func raceAddCredentialLimit(t *testing.T, a, b webauthn.Store) {
	const n, limit = 50, 8
	u := mustUser(t, a)
	var wins, limited atomic.Int32
	parallel(t, n, func(i int) error {
		err := pick(i, a, b).AddCredential(t.Context(), fullCredential(t, u.ID), limit)
		switch {
		case err == nil:
			wins.Add(1)
			return nil
		case errors.Is(err, webauthn.ErrLimit):
			limited.Add(1)
			return nil
		}
		return fmt.Errorf("AddCredential: %w", err)
	})
	if w, l := wins.Load(), limited.Load(); w != limit || l != n-limit {
		t.Errorf("concurrent AddCredential with limit %d: %d succeeded, %d hit the limit; want %d and %d", limit, w, l, limit, n-limit)
	}
	if got := countCredentials(t, a, u.ID); got != limit {
		t.Errorf("user holds %d credentials, want %d", got, limit)
	}
}

// raceRecordSignIn: 100 goroutines each add one to a credential's sign
// count with read, compare-and-set, retry on ErrConflict; no update is
// lost.
func raceRecordSignIn(t *testing.T, a, b webauthn.Store) {
	const n = 100
	u := mustUser(t, a)
	c := fullCredential(t, u.ID)
	c.SignCount = 7
	mustNil(t, "AddCredential", a.AddCredential(t.Context(), c, 0))
	var conflicts atomic.Int32
	parallel(t, n, func(i int) error {
		s := pick(i, a, b)
		for {
			cur, err := s.Credential(t.Context(), c.ID)
			if err != nil {
				return fmt.Errorf("Credential: %w", err)
			}
			err = s.RecordSignIn(t.Context(), webauthn.SignIn{
				CredentialID: c.ID,
				OldCount:     cur.SignCount,
				NewCount:     cur.SignCount + 1,
				BackupState:  true,
				At:           base.Add(time.Duration(i) * time.Second),
			})
			if err == nil {
				return nil
			}
			if !errors.Is(err, webauthn.ErrConflict) {
				return fmt.Errorf("RecordSignIn: %w", err)
			}
			conflicts.Add(1)
		}
	})
	got, err := a.Credential(t.Context(), c.ID)
	mustNil(t, "Credential", err)
	if want := c.SignCount + n; got.SignCount != want {
		t.Errorf("SignCount after %d concurrent increments = %d, want %d (lost updates)", n, got.SignCount, want)
	}
	t.Logf("%d increments, %d conflicts retried", n, conflicts.Load())
}

// raceSaveChallengePerUser: 50 goroutines save a challenge for one user
// with PerUser 8; exactly 8 succeed.
func raceSaveChallengePerUser(t *testing.T, a, b webauthn.Store) {
	const n, limit = 50, 8
	user := randBytes(t, 32)
	lim := webauthn.ChallengeLimits{PerUser: limit, Total: 1000}
	var wins, refused atomic.Int32
	ids := make([]string, n)
	parallel(t, n, func(i int) error {
		c := challengeFor(t, user, base.Add(time.Hour))
		ids[i] = c.ID
		err := pick(i, a, b).SaveChallenge(t.Context(), c, base, lim)
		switch {
		case err == nil:
			wins.Add(1)
			return nil
		case errors.Is(err, webauthn.ErrTooManyCeremonies):
			refused.Add(1)
			return nil
		}
		return fmt.Errorf("SaveChallenge: %w", err)
	})
	assert.Equal(t, int32(limit), wins.Load(), "concurrent SaveChallenge calls that succeeded")
	assert.Equal(t, int32(n-limit), refused.Load(), "concurrent SaveChallenge calls refused")
	held := 0
	for _, id := range ids {
		if _, err := a.TakeChallenge(t.Context(), id, base); err == nil {
			held++
		}
	}
	assert.Equal(t, limit, held, "challenges stored for the user")
}
