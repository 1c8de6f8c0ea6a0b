package pgtest

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestServer(t *testing.T) {
	for _, tc := range []struct {
		name             string
		env              map[string]string
		url, skip, fatal bool
	}{
		{"set", map[string]string{EnvURL: "postgres://x@127.0.0.1/postgres"}, true, false, false},
		{"set in CI", map[string]string{EnvURL: "postgres://x@127.0.0.1/postgres", "CI": "true"}, true, false, false},
		{"unset", map[string]string{}, false, true, false},
		{"unset, CI=false", map[string]string{"CI": "false"}, false, true, false},
		{"unset in CI", map[string]string{"CI": "true"}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, skip, fatal := server(func(k string) string { return tc.env[k] })
			if (url != "") != tc.url || (skip != "") != tc.skip || (fatal != "") != tc.fatal {
				t.Errorf("server() = %q, %q, %q", url, skip, fatal)
			}
			if tc.skip && !strings.Contains(skip, "bash scripts/test.sh") {
				t.Errorf("skip message %q does not say how to run the tests", skip)
			}
			if tc.fatal && !strings.Contains(fatal, "bash scripts/test.sh") {
				t.Errorf("fatal message %q does not say how to run the tests", fatal)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://fidokit@127.0.0.1:5432/postgres?sslmode=disable", "postgres://fidokit@127.0.0.1:5432/db1?sslmode=disable"},
		{"postgresql://u:p@h/", "postgresql://u:p@h/db1"},
		{"host=/tmp user=fidokit", "host=/tmp user=fidokit dbname=db1"},
	} {
		if got := withDatabase(tc.in, "db1"); got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNew checks that each call gets its own empty database and that it
// is dropped when the test ends.
func TestNew(t *testing.T) {
	var names [2]string
	t.Run("create", func(t *testing.T) {
		for i := range names {
			conn, err := pgx.Connect(t.Context(), New(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close(t.Context()) })
			if err := conn.QueryRow(t.Context(), `SELECT current_database()`).Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
			var tables int
			if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Errorf("new database %s has %d tables", names[i], tables)
			}
			if _, err := conn.Exec(t.Context(), `CREATE TABLE t (x int)`); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] {
			t.Fatalf("two calls returned one database %s", names[0])
		}
	})
	conn, err := pgx.Connect(t.Context(), New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for _, name := range names {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}
