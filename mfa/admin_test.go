package mfa_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
)

// get makes one GET of the handler and decodes its JSON object.
func (e *fuzzEnv) get(t *testing.T, path string) (int, map[string]json.RawMessage) {
	t.Helper()
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "198.51.100.4:5555"
	req.Header.Set("User-Agent", "admin-test")
	e.h.ServeHTTP(w, req)
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &obj), "GET %s: %s", path, w.Body)
	return w.Code, obj
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(raw, &v), "%s", raw)
	return v
}

type adminAccount struct {
	User      string `json:"user"`
	UserID    string `json:"user_id"`
	MFAActive bool   `json:"mfa_active"`
	Devices   []struct {
		ID          string  `json:"id"`
		Deactivated *string `json:"deactivated"`
	} `json:"devices"`
	RecoveryCodesLeft int `json:"recovery_codes_left"`
}

func TestAdminRoutes(t *testing.T) {
	e := newFuzzEnv(t)
	b64 := base64.RawURLEncoding.EncodeToString
	alice, bob := b64(e.alice.ID), b64(e.bob.ID)

	// Deactivate Alice's token through the administrator route: the
	// change and its event, naming the administrator and the request.
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/users/"+alice+"/devices/"+e.token+"/deactivate", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "198.51.100.4:5555"
	req.Header.Set("User-Agent", "admin-test")
	e.h.ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code, "%s", w.Body)

	code, obj := e.get(t, "/users")
	require.Equal(t, http.StatusOK, code)
	accounts := decode[[]adminAccount](t, obj["accounts"])
	require.Len(t, accounts, 2)
	byUser := map[string]adminAccount{}
	for _, a := range accounts {
		byUser[a.UserID] = a
	}
	assert.True(t, byUser[alice].MFAActive)
	assert.Equal(t, 10, byUser[alice].RecoveryCodesLeft)
	assert.Len(t, byUser[alice].Devices, 2)
	assert.False(t, byUser[bob].MFAActive)
	assert.Empty(t, byUser[bob].Devices)

	// Paging: one account a page, then an empty page.
	code, obj = e.get(t, "/users?limit=1")
	require.Equal(t, http.StatusOK, code)
	first := decode[[]adminAccount](t, obj["accounts"])
	require.Len(t, first, 1)
	next := decode[string](t, obj["next"])
	code, obj = e.get(t, "/users?limit=1&after="+next)
	require.Equal(t, http.StatusOK, code)
	second := decode[[]adminAccount](t, obj["accounts"])
	require.Len(t, second, 1)
	assert.NotEqual(t, first[0].UserID, second[0].UserID)
	code, obj = e.get(t, "/users?limit=1&after="+decode[string](t, obj["next"]))
	require.Equal(t, http.StatusOK, code)
	assert.Empty(t, decode[[]adminAccount](t, obj["accounts"]))
	assert.Equal(t, "null", string(obj["next"]))

	code, obj = e.get(t, "/users/"+alice)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "alice@example.com", decode[adminAccount](t, obj["account"]).User)
	events := decode[[]mfa.EventJSON](t, obj["events"])
	require.NotEmpty(t, events)
	newest := events[0]
	assert.Equal(t, mfa.EventDeviceDeactivated, newest.Type, "newest first")
	assert.Equal(t, e.token, newest.DeviceID)
	assert.Equal(t, alice, newest.UserID)
	assert.Equal(t, alice, newest.ActorID, "the administrator acted")
	assert.Equal(t, "198.51.100.4", newest.RemoteAddr)
	assert.Equal(t, "admin-test", newest.UserAgent)
	var types []mfa.EventType
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	assert.Contains(t, types, mfa.EventDeviceEnrolled)
	assert.Contains(t, types, mfa.EventRecoveryCodesGenerated)

	// The account's events, oldest first, two a page, add up to the
	// same list.
	var paged []string
	path := "/users/" + alice + "/events?order=oldest&limit=2"
	for range 20 {
		code, obj = e.get(t, path)
		require.Equal(t, http.StatusOK, code)
		page := decode[[]mfa.EventJSON](t, obj["events"])
		if len(page) == 0 {
			break
		}
		for _, ev := range page {
			paged = append(paged, ev.ID)
		}
		path = "/users/" + alice + "/events?order=oldest&limit=2&after=" + url.QueryEscape(decode[string](t, obj["next"]))
	}
	var want []string
	for i := len(events) - 1; i >= 0; i-- {
		want = append(want, events[i].ID)
	}
	assert.Equal(t, want, paged)

	code, obj = e.get(t, "/events?limit=1000")
	require.Equal(t, http.StatusOK, code)
	assert.Len(t, decode[[]mfa.EventJSON](t, obj["events"]), len(events), "Bob has no events")

	for _, bad := range []string{
		"/users?limit=0", "/users?limit=1001", "/users?after=!!", "/users?x=1", "/users?limit=1&limit=2",
		"/users/" + alice + "?limit=1", "/users/" + alice + "/events?order=sideways",
		"/users/" + alice + "/events?after=AAAA", "/users/" + alice + "/events?since=yesterday",
		"/events?until=2026-01-01T00:00:00Z&since=2026-02-01T00:00:00Z", "/users/%20/events",
	} {
		code, obj := e.get(t, bad)
		assert.Equal(t, http.StatusBadRequest, code, bad)
		assert.Contains(t, string(obj["error"]), `"invalid_request"`, bad)
	}
}

func TestAdminRoutesAuthorize(t *testing.T) {
	e := newFuzzEnv(t)
	var targets [][]byte
	h, err := e.m.Handler(mfa.HandlerConfig{
		CurrentUser: func(r *http.Request) ([]byte, error) { return e.bob.ID, nil },
		OnVerified:  func(http.ResponseWriter, *http.Request, *mfa.Verification) error { return nil },
		Authorize: func(r *http.Request, actor, target []byte) error {
			targets = append(targets, target)
			return assert.AnError
		},
	})
	require.NoError(t, err)
	alice := base64.RawURLEncoding.EncodeToString(e.alice.ID)
	for _, p := range []string{"/users", "/events", "/users/" + alice, "/users/" + alice + "/events"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		assert.Equal(t, http.StatusForbidden, w.Code, p)
		assert.Contains(t, w.Body.String(), `"forbidden"`, p)
		assert.NotContains(t, w.Body.String(), "alice@example.com", p)
	}
	require.Len(t, targets, 4)
	assert.Nil(t, targets[0], "every account: a nil target")
	assert.Nil(t, targets[1])
	assert.Equal(t, e.alice.ID, targets[2])
	assert.Equal(t, e.alice.ID, targets[3])
}

func TestAccountsAndAccount(t *testing.T) {
	e := newFuzzEnv(t)
	ctx := t.Context()
	all, err := e.m.Accounts(ctx, nil, 0, mfa.ReportOptions{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	one, err := e.m.Account(ctx, e.alice.ID, mfa.ReportOptions{})
	require.NoError(t, err)
	assert.True(t, one.MFA)
	assert.Equal(t, 10, one.RecoveryCodesLeft)
	_, err = e.m.Accounts(ctx, nil, mfa.MaxAccountLimit+1, mfa.ReportOptions{})
	assert.ErrorIs(t, err, mfa.ErrInvalidRequest)
	_, err = e.m.Account(ctx, []byte("nobody"), mfa.ReportOptions{})
	assert.Error(t, err)
}

// FuzzAdminQuery sends arbitrary query strings to the administrator's
// listings: never a 500, always a JSON object of the listing's shape or
// a documented error, and nothing stored changes.
func FuzzAdminQuery(f *testing.F) {
	e := newFuzzEnv(f)
	for _, s := range []string{
		"", "limit=1", "limit=1000", "limit=0", "after=AAAA", "after=" + base64.RawURLEncoding.EncodeToString(e.alice.ID),
		"order=oldest", "order=newest&limit=3", "since=2026-03-01T12:00:00Z&until=2026-03-02T00:00:00Z",
		"since=2026-03-01T12:00:00.123456789%2B02:00", "after=AAAAAAAAAAAAAAAAAAAAAAAA", "%zz", "limit=-1", "a=1&a=2",
	} {
		for route := range 4 {
			f.Add(uint8(route), s)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, q string) {
		e := newFuzzEnv(t)
		alice := base64.RawURLEncoding.EncodeToString(e.alice.ID)
		paths := []struct {
			path string
			keys []string
		}{
			{"/users", []string{"accounts", "next"}},
			{"/events", []string{"events", "next"}},
			{"/users/" + alice, []string{"account", "events"}},
			{"/users/" + alice + "/events", []string{"events", "next"}},
		}
		p := paths[int(route)%len(paths)]
		before := e.state(t)
		req := httptest.NewRequest("GET", p.path, nil)
		req.URL.RawQuery = q // as the server takes it, however malformed
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		require.NotEqual(t, http.StatusInternalServerError, w.Code, "%s", w.Body)
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &obj), "%s", w.Body)
		if w.Code == http.StatusOK {
			assert.Len(t, obj, len(p.keys))
			for _, k := range p.keys {
				assert.Contains(t, obj, k)
			}
		} else {
			require.Equal(t, http.StatusBadRequest, w.Code, "%s", w.Body)
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			assert.True(t, httpCodes[body.Error.Code], body.Error.Code)
		}
		for _, s := range e.secrets {
			assert.NotContains(t, w.Body.String(), s)
		}
		assert.Equal(t, before, e.state(t))
	})
}
