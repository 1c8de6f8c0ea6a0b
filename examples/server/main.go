// Command server is a small web app that walks a person through the
// guides' path for account MFA, in a browser, on fidokit: sign up and
// sign in with a password, assign MFA devices (a security key, an
// authenticator app from a QR code, a hardware TOTP token from its seed
// file), keep recovery codes, sign in with any of them as the second
// factor, and, as the administrator, see every account's MFA status,
// deactivate a lost device and require MFA of everyone.
//
//	go run ./examples/server                       # http://localhost:8080, data in the user cache directory
//	go run ./examples/server -addr 127.0.0.1:9000
//	go run ./examples/server -data /tmp/demo       # where accounts.db, fidokit.db and seal.key live
//	go run ./examples/server -db postgres://localhost/fidokit
//	go run ./examples/server -admin alice          # alice is the administrator (default: the first account)
//
// It listens on the loopback interface only, and its one origin is
// http://localhost:PORT: WebAuthn accepts plain http on localhost, and
// the relying party ID is "localhost", so open the printed URL, not
// 127.0.0.1.
//
// What is whose:
//   - passwords are the app's own (accounts.go): argon2id hashes in
//     accounts.db, a small SQLite file with the account list;
//   - security keys, TOTP devices, recovery codes and challenges are
//     fidokit's: package webauthn and package mfa on one store, a SQLite
//     file (fidokit.db) or PostgreSQL (-db postgres://...);
//   - TOTP seeds are sealed under the key in seal.key (a real service
//     keeps that key in its secret manager, not beside the data);
//   - sessions are in memory: a restart signs everyone out.
//
// The pages are html/template with a small script (static/fidokit.js, a
// module to copy, and static/pages.js, this app's glue) and a stylesheet,
// embedded: no build step, nothing from another site.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/postgres"
	"github.com/fidokit/fidokit/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("server", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "127.0.0.1:8080", "address to listen on (loopback only)")
	data := fl.String("data", "", "directory for accounts.db, seal.key and the default SQLite database (default: the user cache directory's fidokit-server, or a temporary directory)")
	db := fl.String("db", "", "the fidokit store: a SQLite file, or a postgres:// URL (default: DATA/fidokit.db)")
	admin := fl.String("admin", "", "the administrator's account name (default: the first account)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}

	ln, err := listen(*addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	origin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)

	dir, err := dataDir(*data)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	st, closeStore, where, err := openStore(ctx, *db, dir)
	if err != nil {
		return err
	}
	defer closeStore()
	acc, err := openAccounts(ctx, filepath.Join(dir, "accounts.db"), defaultPasswordHash)
	if err != nil {
		return err
	}
	defer acc.Close()
	keys, err := loadKeyring(filepath.Join(dir, "seal.key"))
	if err != nil {
		return err
	}
	a, err := newApp(config{Origin: origin, Store: st, Accounts: acc, Keys: keys, Admin: *admin, Log: logger})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "fidokit demo: open %s\n", origin)
	fmt.Fprintf(stdout, "  accounts: %s\n  devices:  %s\n", filepath.Join(dir, "accounts.db"), where)
	if *admin != "" {
		fmt.Fprintf(stdout, "  administrator: %s\n", *admin)
	} else {
		fmt.Fprintf(stdout, "  administrator: the first account made\n")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listen listens on addr, which must be on the loopback interface: the
// demo's origin is http://localhost.
func listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %v", addr, err)
	}
	switch host {
	case "", "localhost":
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-addr %q: the demo serves http://localhost only; listen on 127.0.0.1 (or ::1)", addr)
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}

// dataDir returns (and makes) the data directory.
func dataDir(dir string) (string, error) {
	if dir == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(cache, "fidokit-server")
		} else if dir, err = os.MkdirTemp("", "fidokit-server-"); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// openStore opens the one store of keys and MFA devices.
func openStore(ctx context.Context, db, dir string) (mfa.Store, func(), string, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		s, err := postgres.Open(ctx, db)
		if err != nil {
			return nil, nil, "", err
		}
		return s, s.Close, "PostgreSQL", nil
	}
	if db == "" {
		db = filepath.Join(dir, "fidokit.db")
	}
	s, err := sqlite.Open(ctx, db)
	if err != nil {
		return nil, nil, "", err
	}
	return s, func() { s.Close() }, db, nil
}

// loadKeyring reads the key that seals TOTP seeds, making it on the first
// start: 32 random bytes, in hex, readable by the owner only.
func loadKeyring(path string) (*mfa.Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		b = []byte(hex.EncodeToString(key) + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: want 32 bytes in hex", path)
	}
	return mfa.NewKeyring("seal-1", map[string][]byte{"seal-1": key})
}
