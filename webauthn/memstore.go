package webauthn

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemoryStore is a [Store] that keeps everything in process memory, for
// tests, examples and single-process demos. Its contents are lost when the
// process exits; use the SQLite or PostgreSQL store for anything else.
//
// A MemoryStore is safe for concurrent use by multiple goroutines: one
// mutex guards all of its state, so every method is atomic, and
// [ChallengeLimits] hold exactly. Challenges are kept in order of expiry,
// so that SaveChallenge removes the expired ones in time proportional to
// their number. It copies
// every slice on the way in and out, so callers never alias stored state.
// Times are kept in UTC, truncated to the microsecond, as the SQL stores
// keep them.
//
// The zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	mu         sync.Mutex
	users      map[string]*User // by string(ID)
	names      map[string]string
	creds      map[string]*memCred // by string(ID)
	seq        uint64
	challenges map[string]*memChallenge
	expiries   challengeHeap  // the challenges, soonest expiry first
	perUser    map[string]int // outstanding challenges by string(UserID)
}

// memChallenge is a stored challenge and its place in the expiry heap.
type memChallenge struct {
	c   *Challenge
	idx int
}

// challengeHeap is a container/heap of challenges by Expires.
type challengeHeap []*memChallenge

func (h challengeHeap) Len() int           { return len(h) }
func (h challengeHeap) Less(i, j int) bool { return h[i].c.Expires.Before(h[j].c.Expires) }
func (h challengeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *challengeHeap) Push(x any) {
	mc := x.(*memChallenge)
	mc.idx = len(*h)
	*h = append(*h, mc)
}
func (h *challengeHeap) Pop() any {
	old := *h
	mc := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return mc
}

// purgeBatch is how many expired challenges SaveChallenge removes at
// least on every call, in every store of this module.
const purgeBatch = 64

// memCred is a stored credential with its insertion order, the tie-break
// when two credentials of a user share a Created time.
type memCred struct {
	c   Credential
	seq uint64
}

var (
	_ SignInStore = (*MemoryStore)(nil)
	_ BeginStore  = (*MemoryStore)(nil)
	_ FinishStore = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		users:      make(map[string]*User),
		names:      make(map[string]string),
		creds:      make(map[string]*memCred),
		challenges: make(map[string]*memChallenge),
		perUser:    make(map[string]int),
	}
}

// storeTime is how every store keeps a time: UTC, microsecond precision,
// no monotonic reading; the zero time stays zero.
func storeTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// cloneBytes copies b; an empty b becomes nil.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// cloneStrings copies s; an empty s becomes nil.
func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func copyUser(u *User) *User {
	return &User{
		ID:          cloneBytes(u.ID),
		Name:        u.Name,
		DisplayName: u.DisplayName,
		Created:     storeTime(u.Created),
	}
}

func copyCredential(c *Credential) *Credential {
	d := *c
	d.ID = cloneBytes(c.ID)
	d.UserID = cloneBytes(c.UserID)
	d.PublicKey = cloneBytes(c.PublicKey)
	d.AAGUID = cloneBytes(c.AAGUID)
	d.Transports = cloneStrings(c.Transports)
	d.Deactivated = storeTime(c.Deactivated)
	d.Created = storeTime(c.Created)
	d.LastUsed = storeTime(c.LastUsed)
	return &d
}

func copyChallenge(c *Challenge) *Challenge {
	return &Challenge{
		ID:        c.ID,
		Challenge: cloneBytes(c.Challenge),
		Ceremony:  c.Ceremony,
		UserID:    cloneBytes(c.UserID),
		Session:   cloneBytes(c.Session),
		Expires:   storeTime(c.Expires),
	}
}

// CreateUser implements [Store.CreateUser].
func (m *MemoryStore) CreateUser(ctx context.Context, u *User) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: creating user: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[string(u.ID)]; ok {
		return fmt.Errorf("memory store: creating user: ID: %w", ErrExists)
	}
	if _, ok := m.names[u.Name]; ok {
		return fmt.Errorf("memory store: creating user %q: name: %w", u.Name, ErrExists)
	}
	m.users[string(u.ID)] = copyUser(u)
	m.names[u.Name] = string(u.ID)
	return nil
}

// CreateUserWithCredential implements [Store.CreateUserWithCredential].
func (m *MemoryStore) CreateUserWithCredential(ctx context.Context, u *User, c *Credential) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: creating user with a credential: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.users[string(u.ID)] != nil:
		return fmt.Errorf("memory store: creating user: ID: %w", ErrExists)
	case m.names[u.Name] != "":
		return fmt.Errorf("memory store: creating user %q: name: %w", u.Name, ErrExists)
	case !bytes.Equal(c.UserID, u.ID):
		return fmt.Errorf("memory store: creating user %q: credential of another user: %w", u.Name, ErrNotFound)
	case m.creds[string(c.ID)] != nil:
		return fmt.Errorf("memory store: creating user %q: credential: %w", u.Name, ErrExists)
	}
	m.users[string(u.ID)] = copyUser(u)
	m.names[u.Name] = string(u.ID)
	m.seq++
	m.creds[string(c.ID)] = &memCred{c: *copyCredential(c), seq: m.seq}
	return nil
}

// User implements [Store.User].
func (m *MemoryStore) User(ctx context.Context, id []byte) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: reading user: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[string(id)]
	if !ok {
		return nil, fmt.Errorf("memory store: reading user: %w", ErrNotFound)
	}
	return copyUser(u), nil
}

// UserByName implements [Store.UserByName].
func (m *MemoryStore) UserByName(ctx context.Context, name string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: reading user %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.names[name]
	if !ok {
		return nil, fmt.Errorf("memory store: reading user %q: %w", name, ErrNotFound)
	}
	return copyUser(m.users[id]), nil
}

// AddCredential implements [Store.AddCredential].
func (m *MemoryStore) AddCredential(ctx context.Context, c *Credential, limit int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: adding credential: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[string(c.UserID)]; !ok {
		return fmt.Errorf("memory store: adding credential: user: %w", ErrNotFound)
	}
	if _, ok := m.creds[string(c.ID)]; ok {
		return fmt.Errorf("memory store: adding credential: %w", ErrExists)
	}
	if limit > 0 {
		n := 0
		for _, mc := range m.creds {
			if bytes.Equal(mc.c.UserID, c.UserID) {
				n++
			}
		}
		if n >= limit {
			return fmt.Errorf("memory store: adding credential: %d of %d: %w", n, limit, ErrLimit)
		}
	}
	m.seq++
	m.creds[string(c.ID)] = &memCred{c: *copyCredential(c), seq: m.seq}
	return nil
}

// Credential implements [Store.Credential].
func (m *MemoryStore) Credential(ctx context.Context, id []byte) (*Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: reading credential: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.creds[string(id)]
	if !ok {
		return nil, fmt.Errorf("memory store: reading credential: %w", ErrNotFound)
	}
	return copyCredential(&mc.c), nil
}

// Credentials implements [Store.Credentials].
func (m *MemoryStore) Credentials(ctx context.Context, userID []byte) ([]*Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: listing credentials: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.credentials(userID), nil
}

// UserWithCredentials implements [BeginStore.UserWithCredentials] under
// the store's one lock.
func (m *MemoryStore) UserWithCredentials(ctx context.Context, id []byte, name string) (*User, []*Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("memory store: reading user: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(id)
	if id == nil {
		var ok bool
		if key, ok = m.names[name]; !ok {
			return nil, nil, fmt.Errorf("memory store: reading user %q: %w", name, ErrNotFound)
		}
	}
	u, ok := m.users[key]
	if !ok {
		return nil, nil, fmt.Errorf("memory store: reading user: %w", ErrNotFound)
	}
	return copyUser(u), m.credentials(u.ID), nil
}

// credentials returns copies of userID's credentials, oldest first. m.mu
// must be held.
func (m *MemoryStore) credentials(userID []byte) []*Credential {
	var found []*memCred
	for _, mc := range m.creds {
		if bytes.Equal(mc.c.UserID, userID) {
			found = append(found, mc)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if !a.c.Created.Equal(b.c.Created) {
			return a.c.Created.Before(b.c.Created)
		}
		return a.seq < b.seq
	})
	out := make([]*Credential, len(found))
	for i, mc := range found {
		out[i] = copyCredential(&mc.c)
	}
	return out
}

// owned returns userID's credential id, or nil. m.mu must be held.
func (m *MemoryStore) owned(userID, id []byte) *Credential {
	mc, ok := m.creds[string(id)]
	if !ok || !bytes.Equal(mc.c.UserID, userID) {
		return nil
	}
	return &mc.c
}

// RenameCredential implements [Store.RenameCredential].
func (m *MemoryStore) RenameCredential(ctx context.Context, userID, id []byte, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: renaming credential: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.owned(userID, id)
	if c == nil {
		return fmt.Errorf("memory store: renaming credential: %w", ErrNotFound)
	}
	c.Name = name
	return nil
}

// DeactivateCredential implements [Store.DeactivateCredential].
func (m *MemoryStore) DeactivateCredential(ctx context.Context, userID, id []byte, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: deactivating credential: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.owned(userID, id)
	if c == nil {
		return fmt.Errorf("memory store: deactivating credential: %w", ErrNotFound)
	}
	c.Deactivated = storeTime(at)
	return nil
}

// DeleteCredential implements [Store.DeleteCredential].
func (m *MemoryStore) DeleteCredential(ctx context.Context, userID, id []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: deleting credential: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owned(userID, id) == nil {
		return fmt.Errorf("memory store: deleting credential: %w", ErrNotFound)
	}
	delete(m.creds, string(id))
	return nil
}

// RecordSignIn implements [Store.RecordSignIn].
func (m *MemoryStore) RecordSignIn(ctx context.Context, s SignIn) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: recording sign-in: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recordSignIn(s)
}

// recordSignIn is RecordSignIn with m.mu held.
func (m *MemoryStore) recordSignIn(s SignIn) error {
	mc, ok := m.creds[string(s.CredentialID)]
	switch {
	case !ok:
		return fmt.Errorf("memory store: recording sign-in: %w", ErrNotFound)
	case !mc.c.Active():
		return fmt.Errorf("memory store: recording sign-in: %w", ErrInactive)
	case mc.c.SignCount != s.OldCount:
		return fmt.Errorf("memory store: recording sign-in: stored %d, read %d: %w",
			mc.c.SignCount, s.OldCount, ErrConflict)
	}
	mc.c.SignCount = s.NewCount
	mc.c.BackupState = s.BackupState
	mc.c.LastUsed = storeTime(s.At)
	return nil
}

// FlagClone implements [Store.FlagClone].
func (m *MemoryStore) FlagClone(ctx context.Context, id []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: flagging clone: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.creds[string(id)]
	if !ok {
		return fmt.Errorf("memory store: flagging clone: %w", ErrNotFound)
	}
	mc.c.CloneWarning = true
	return nil
}

// ClearCloneWarning implements [Store.ClearCloneWarning].
func (m *MemoryStore) ClearCloneWarning(ctx context.Context, userID, id []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: clearing clone warning: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.owned(userID, id)
	if c == nil {
		return fmt.Errorf("memory store: clearing clone warning: %w", ErrNotFound)
	}
	c.CloneWarning = false
	return nil
}

// SaveChallenge implements [Store.SaveChallenge].
func (m *MemoryStore) SaveChallenge(ctx context.Context, c *Challenge, now time.Time, limits ChallengeLimits) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: saving challenge: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now = storeTime(now)
	m.purge(now, purgeBatch)
	if _, ok := m.challenges[c.ID]; ok {
		return fmt.Errorf("memory store: saving challenge: %w", ErrExists)
	}
	if limits.PerUser > 0 && len(c.UserID) > 0 && m.perUser[string(c.UserID)] >= limits.PerUser {
		// Expired ones may still count: remove them all, then decide.
		m.purge(now, -1)
		if n := m.perUser[string(c.UserID)]; n >= limits.PerUser {
			return fmt.Errorf("memory store: saving challenge: %d for the user: %w", n, ErrTooManyCeremonies)
		}
	}
	if limits.Total > 0 && len(m.challenges) >= limits.Total {
		m.purge(now, -1)
		if n := len(m.challenges); n >= limits.Total {
			return fmt.Errorf("memory store: saving challenge: %d in all: %w", n, ErrTooManyCeremonies)
		}
	}
	mc := &memChallenge{c: copyChallenge(c)}
	m.challenges[c.ID] = mc
	heap.Push(&m.expiries, mc)
	if len(c.UserID) > 0 {
		m.perUser[string(c.UserID)]++
	}
	return nil
}

// purge removes up to n challenges that expired at or before now, soonest
// first (all of them if n < 0), and returns how many it removed. m.mu must
// be held.
func (m *MemoryStore) purge(now time.Time, n int) int {
	removed := 0
	for len(m.expiries) > 0 && removed != n && !now.Before(m.expiries[0].c.Expires) {
		m.remove(m.expiries[0])
		removed++
	}
	return removed
}

// remove deletes a stored challenge. m.mu must be held.
func (m *MemoryStore) remove(mc *memChallenge) {
	heap.Remove(&m.expiries, mc.idx)
	delete(m.challenges, mc.c.ID)
	if u := string(mc.c.UserID); u != "" {
		if m.perUser[u]--; m.perUser[u] <= 0 {
			delete(m.perUser, u)
		}
	}
}

// TakeChallenge implements [Store.TakeChallenge].
func (m *MemoryStore) TakeChallenge(ctx context.Context, id string, now time.Time) (*Challenge, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: taking challenge: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.challenges[id]
	if !ok {
		return nil, fmt.Errorf("memory store: taking challenge: %w", ErrNotFound)
	}
	m.remove(mc)
	if !storeTime(now).Before(mc.c.Expires) {
		return nil, fmt.Errorf("memory store: taking challenge: %w", ErrExpired)
	}
	return copyChallenge(mc.c), nil
}

// TakeSignIn implements [SignInStore.TakeSignIn] under one lock.
func (m *MemoryStore) TakeSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*Challenge, *Credential, *User, error) {
	return m.signIn(ctx, "taking challenge", true, id, credentialID, now)
}

// ReadSignIn implements [FinishStore.ReadSignIn] under one lock.
func (m *MemoryStore) ReadSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*Challenge, *Credential, *User, error) {
	return m.signIn(ctx, "reading challenge", false, id, credentialID, now)
}

// signIn is TakeSignIn (take) or ReadSignIn; what names the operation in
// errors.
func (m *MemoryStore) signIn(ctx context.Context, what string, take bool, id string, credentialID []byte, now time.Time) (*Challenge, *Credential, *User, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("memory store: %s: %w", what, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.challenges[id]
	if !ok {
		return nil, nil, nil, fmt.Errorf("memory store: %s: %w", what, ErrNotFound)
	}
	if take {
		m.remove(mc)
	}
	if !storeTime(now).Before(mc.c.Expires) {
		return nil, nil, nil, fmt.Errorf("memory store: %s: %w", what, ErrExpired)
	}
	var (
		cred *Credential
		user *User
	)
	if c, ok := m.creds[string(credentialID)]; ok {
		cred = copyCredential(&c.c)
		if u, ok := m.users[string(c.c.UserID)]; ok {
			user = copyUser(u)
		}
	}
	return copyChallenge(mc.c), cred, user, nil
}

// FinishSignIn implements [FinishStore.FinishSignIn] under one lock.
func (m *MemoryStore) FinishSignIn(ctx context.Context, id string, s SignIn) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory store: finishing sign-in: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.challenges[id]
	if !ok {
		return false, nil
	}
	m.remove(mc)
	return true, m.recordSignIn(s)
}

// PurgeChallenges implements [Store.PurgeChallenges].
func (m *MemoryStore) PurgeChallenges(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory store: purging challenges: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.purge(storeTime(now), -1), nil
}

// Users returns up to limit users with an ID greater than after
// (bytewise), in ID order; a limit <= 0 means no limit. It is a cursor
// over every account: pass the last ID of one page as after for the
// next. It is the listing mfa.Store adds; [Store] does not require it.
func (m *MemoryStore) Users(ctx context.Context, after []byte, limit int) ([]*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: listing users: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var found []*User
	for _, u := range m.users {
		if bytes.Compare(u.ID, after) > 0 {
			found = append(found, u)
		}
	}
	sort.Slice(found, func(i, j int) bool { return bytes.Compare(found[i].ID, found[j].ID) < 0 })
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	out := make([]*User, len(found))
	for i, u := range found {
		out[i] = copyUser(u)
	}
	return out, nil
}
