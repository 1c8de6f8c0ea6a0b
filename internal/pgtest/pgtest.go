// Package pgtest gives each test its own empty PostgreSQL database, for
// tests of code that stores things in PostgreSQL. Start with [New].
//
// The server is named by the environment variable FIDOKIT_POSTGRES_URL
// (see [EnvURL]), a connection URL for a role that may create databases,
// such as postgres://fidokit@127.0.0.1:5432/postgres?sslmode=disable.
// bash scripts/test.sh installs PostgreSQL, starts a throwaway server and
// sets it. Without the variable, tests that call New skip, except in CI
// (CI=true), where they fail: there PostgreSQL is required.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that names the PostgreSQL server.
const EnvURL = "FIDOKIT_POSTGRES_URL"

// cleanupTimeout bounds dropping a test's database.
const cleanupTimeout = 30 * time.Second

// New creates a fresh database with a random name on the server named by
// FIDOKIT_POSTGRES_URL, drops it when the test ends (after the test's
// other cleanups, so close pools in a t.Cleanup registered after New),
// and returns a connection string for it. It skips t when the variable is
// unset, or fails t if CI=true.
func New(t testing.TB) (connString string) {
	t.Helper()
	base := URL(t)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("pgtest: parsing %s: %v", EnvURL, err)
	}
	name := "fidokit_test_" + randomSuffix()
	admin := func(ctx context.Context, sql string) error {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	// FILE_COPY (PostgreSQL 15 and later) copies the template's files
	// rather than logging every block: faster for a test's tiny database.
	if err := admin(t.Context(), "CREATE DATABASE "+ident+" STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("pgtest: creating database %s on %s: %v", name, redact(base), err)
	}
	// t.Context is canceled before cleanups run; dropping needs its own.
	bg := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(bg, cleanupTimeout)
		defer cancel()
		if err := admin(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

// URL returns the FIDOKIT_POSTGRES_URL of the server, without creating a
// database. Like [New], it skips t when the variable is unset, or fails t
// if CI=true; call it first in a test that runs many subtests on
// databases from New, so that it skips once.
func URL(t testing.TB) string {
	t.Helper()
	base, skip, fatal := server(os.Getenv)
	switch {
	case fatal != "":
		t.Fatal(fatal)
	case skip != "":
		t.Skip(skip)
	}
	return base
}

// server reads the server URL through getenv and says whether to skip or
// fail instead.
func server(getenv func(string) string) (url, skip, fatal string) {
	url = getenv(EnvURL)
	switch {
	case url != "":
		return url, "", ""
	case getenv("CI") == "true":
		return "", "", EnvURL + " not set: PostgreSQL is required in CI; run bash scripts/test.sh"
	}
	return "", EnvURL + " not set: skipping PostgreSQL tests; run bash scripts/test.sh (which installs and starts PostgreSQL) or set " + EnvURL, ""
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// withDatabase returns connString naming database name instead.
func withDatabase(connString, name string) string {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		u.RawPath = ""
		return u.String()
	}
	return strings.TrimSpace(connString) + " dbname=" + name
}

// redact hides a password in a URL for error messages.
func redact(connString string) string {
	if u, err := url.Parse(connString); err == nil && u.User != nil {
		return u.Redacted()
	}
	return fmt.Sprintf("the server in %s", EnvURL)
}
