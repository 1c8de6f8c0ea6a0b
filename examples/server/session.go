package main

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/fidokit/fidokit/mfa"
)

// Sessions are the application's, not fidokit's: a random ID in a cookie,
// the state in memory. mfa only needs to be told who is signed in
// (HandlerConfig.CurrentUser), to tell the application when a second
// factor passed (HandlerConfig.OnVerified), and to read that back
// (mfa.SessionFunc) for the require-MFA policy.

// sessionCookie names the session cookie.
const sessionCookie = "session"

// Session lifetimes.
const (
	// pendingTTL is how long a password sign-in waits for its second
	// factor.
	pendingTTL = 10 * time.Minute
	// idleTTL ends a session nobody used for this long.
	idleTTL = 12 * time.Hour
	// maxTTL ends any session this long after it began.
	maxTTL = 24 * time.Hour
)

// session is one browser's sign-in.
type session struct {
	// UserID and Name are the account whose password passed.
	UserID []byte
	Name   string
	// Pending is true from the password until the second factor, for an
	// account that has MFA: such a session reaches only the second-factor
	// step.
	Pending bool
	// MFAAt, MFAFactor and MFADevice are the last second factor that
	// passed in this session (mfa.Verification.At, .Factor, .Device.ID);
	// MFAAt is zero when none did.
	MFAAt     time.Time
	MFAFactor mfa.Factor
	MFADevice string
	// Created and Seen are when the session began and was last used.
	Created, Seen time.Time
}

// sessions holds every session in memory: a restart signs everyone out.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, now: now}
}

// newID returns 32 random bytes in base64url.
func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// expired reports whether s is over at now.
func (s *session) expired(now time.Time) bool {
	switch {
	case s.Pending && now.Sub(s.Created) > pendingTTL:
		return true
	case now.Sub(s.Seen) > idleTTL, now.Sub(s.Created) > maxTTL:
		return true
	}
	return false
}

// start makes a new session for s, replacing the browser's old one if
// any, and sets its cookie. A new ID at every change of privilege keeps
// an ID planted before the sign-in from being of any use after it.
func (ss *sessions) start(w http.ResponseWriter, r *http.Request, s session) {
	now := ss.now()
	s.Created, s.Seen = now, now
	id := newID()
	ss.mu.Lock()
	if c, err := r.Cookie(sessionCookie); err == nil {
		delete(ss.m, c.Value)
	}
	for k, v := range ss.m {
		if v.expired(now) {
			delete(ss.m, k)
		}
	}
	ss.m[id] = &s
	ss.mu.Unlock()
	setSessionCookie(w, id, int(maxTTL/time.Second))
}

// setSessionCookie sets (or, with maxAge < 0, clears) the session cookie:
// HttpOnly, so no script reads it; Secure, which browsers honour on
// http://localhost too; SameSite=Strict, so no other site's page sends
// it.
func setSessionCookie(w http.ResponseWriter, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	})
}

// get returns a copy of r's session, or false.
func (ss *sessions) get(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[c.Value]
	if !ok {
		return session{}, false
	}
	if s.expired(now) {
		delete(ss.m, c.Value)
		return session{}, false
	}
	s.Seen = now
	return *s, true
}

// update changes r's session under the lock; false if there is none.
func (ss *sessions) update(r *http.Request, f func(s *session)) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[c.Value]
	if !ok || s.expired(now) {
		return false
	}
	f(s)
	return true
}

// end removes r's session and clears its cookie.
func (ss *sessions) end(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.m, c.Value)
		ss.mu.Unlock()
	}
	setSessionCookie(w, "", -1)
}

// verified records a second factor in r's session. A pending session
// becomes a signed-in one under a new ID.
func (ss *sessions) verified(w http.ResponseWriter, r *http.Request, v *mfa.Verification) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[c.Value]
	if !ok || s.expired(now) || string(s.UserID) != string(v.UserID) {
		return false
	}
	s.MFAAt, s.MFAFactor, s.MFADevice = v.At, v.Factor, ""
	if v.Device != nil {
		s.MFADevice = v.Device.ID
	}
	if s.Pending {
		s.Pending = false
		delete(ss.m, c.Value)
		id := newID()
		ss.m[id] = s
		setSessionCookie(w, id, int(maxTTL/time.Second))
	}
	return true
}
