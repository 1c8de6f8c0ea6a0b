package fidotools

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/fidotest"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid/preload"
)

const rpID = "example.com"

// env is one virtual key served on a socket, and what it takes to point
// libfido2's tools at it.
type env struct {
	t    *testing.T
	so   string // the shim
	key  *virtual.Key
	sock string
	dir  string // for the tools' input and output files
	ca   *virtual.AttestationCA
}

// newEnv serves a virtual key made from cfg (nil: defaults) with its own
// attestation CA. It skips the test when a tool or gcc is missing (fails
// it with CI=true).
func newEnv(t *testing.T, cfg *virtual.Config) *env {
	t.Helper()
	for _, tool := range []string{"fido2-token", "fido2-cred", "fido2-assert"} {
		preload.LookPathForTest(t, tool, "fido2-tools")
	}
	e := &env{t: t, so: preload.BuildForTest(t), dir: t.TempDir()}
	if cfg == nil {
		cfg = &virtual.Config{}
	}
	if cfg.AttestationCA == nil {
		ca, err := virtual.NewAttestationCA(nil, "fidotools test CA")
		if err != nil {
			t.Fatal(err)
		}
		cfg.AttestationCA = ca
	}
	e.ca = cfg.AttestationCA
	e.key = fidotest.NewKey(t, cfg)
	e.sock = fidotest.Serve(t, e.key)
	return e
}

// run runs a tool with the shim preloaded and stdin as its input (PINs),
// returning its standard output and, on failure, an error with its
// standard error.
func (e *env) run(stdin, tool string, args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+e.so)
	cmd.Stdin = strings.NewReader(stdin)
	// A session of its own has no controlling terminal, so the tools
	// read PINs from stdin instead of /dev/tty.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstderr: %s", tool, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (e *env) mustRun(stdin, tool string, args ...string) string {
	e.t.Helper()
	out, err := e.run(stdin, tool, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// file writes lines to a new file and returns its path.
func (e *env) file(name string, lines ...string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) read(path string) []string {
	e.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// info reads the key's getInfo through fidokit's own client, to decide
// whether a feature the test needs has landed in the virtual key.
func (e *env) info() *fido.Info {
	e.t.Helper()
	d, err := e.key.Open(context.Background(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer d.Close()
	info, err := d.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// requireFeature fails the test when the virtual key does not offer a feature
// the tool test needs, naming what getInfo said instead.
func (e *env) requireFeature(feature string, has bool) {
	e.t.Helper()
	if !has {
		e.t.Fatalf("the virtual key does not offer %s (getInfo: extensions %q, options %v)",
			feature, e.info().Extensions, e.info().Options)
	}
}

func (e *env) hasExtension(name string) bool { return slices.Contains(e.info().Extensions, name) }

func (e *env) hasOption(name string) bool {
	_, ok := e.info().Option(name)
	return ok
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// authData decodes the tools' authenticator data: base64 of a CBOR byte
// string.
func authData(t testing.TB, s string) *ctap.AuthData {
	t.Helper()
	var raw []byte
	if err := ctap.Unmarshal("authData", unb64(t, s), &raw); err != nil {
		t.Fatalf("authenticator data is not a CBOR byte string: %v", err)
	}
	ad, err := ctap.ParseAuthData(raw)
	if err != nil {
		t.Fatalf("authenticator data: %v", err)
	}
	return ad
}

// extensions decodes authenticator data's extension outputs.
func extensions(t testing.TB, ad *ctap.AuthData) map[string]any {
	t.Helper()
	if len(ad.Extensions) == 0 {
		return nil
	}
	var m map[string]any
	if err := ctap.UnmarshalLenient("extensions", ad.Extensions, &m); err != nil {
		t.Fatalf("extension outputs: %v", err)
	}
	return m
}

// tamper flips a bit in the middle of a base64 blob.
func tamper(t testing.TB, s string) string {
	b := unb64(t, s)
	b[len(b)/2] ^= 0x01
	return b64(b)
}

func TestTokenInfo(t *testing.T) {
	aaguid := [16]byte{0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		name string
		cfg  *virtual.Config
		want map[string]string
	}{
		{"CTAP 2.1", &virtual.Config{AAGUID: aaguid, ResidentKeySlots: 3}, map[string]string{
			"caps":            "0x05 (wink, cbor, msg)",
			"version strings": "FIDO_2_0, FIDO_2_1, U2F_V2",
			"aaguid":          hex.EncodeToString(aaguid[:]),
			"algorithms":      "es256 (public-key), eddsa (public-key)",
			"maxmsgsiz":       "1200",
			"maxcredcntlst":   "8",
			"maxcredlen":      "128",
			"remaining rk(s)": "3",
		}},
		{"CTAP 2.0", &virtual.Config{AAGUID: aaguid, CTAPVersion: virtual.CTAP20}, map[string]string{
			"version strings": "FIDO_2_0, U2F_V2",
			"aaguid":          hex.EncodeToString(aaguid[:]),
		}},
		{"CTAP2 only", &virtual.Config{NoU2F: true}, map[string]string{
			"caps":            "0x0d (wink, cbor, nomsg)",
			"version strings": "FIDO_2_0, FIDO_2_1",
		}},
		{"U2F only", &virtual.Config{U2FOnly: true}, map[string]string{
			"caps": "0x01 (wink, nocbor, msg)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			out := e.mustRun("", "fido2-token", "-I", e.sock)
			got := map[string]string{}
			for _, l := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(l, ": "); ok {
					got[k] = v
				}
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
			if tt.cfg.U2FOnly {
				if _, ok := got["version strings"]; ok {
					t.Errorf("a U2F-only key printed CTAP2 info:\n%s", out)
				}
				return
			}
			opts := strings.Split(got["options"], ", ")
			for _, o := range []string{"rk", "up", "noplat"} {
				if !slices.Contains(opts, o) {
					t.Errorf("options %q lack %s", got["options"], o)
				}
			}
		})
	}
}

// cred is a credential made and verified with fido2-cred.
type cred struct {
	id     []byte
	pubPEM string // fido2-cred -V's output after the ID line
	userID []byte
}

// makeCred runs fido2-cred -M with flags and then -V with verifyFlags on
// its output, checks both, and returns the credential.
func (e *env) makeCred(t *testing.T, user string, flags, verifyFlags []string, typ string) (*cred, *ctap.AuthData) {
	t.Helper()
	cdh, userID := random(32), random(32)
	in := e.file("cred-in", b64(cdh), rpID, user, b64(userID))
	out := filepath.Join(e.dir, "cred-out")
	args := append([]string{"-M", "-q", "-i", in, "-o", out}, flags...)
	args = append(args, e.sock)
	if typ != "" {
		args = append(args, typ)
	}
	e.mustRun("", "fido2-cred", args...)

	lines := e.read(out)
	if len(lines) < 6 {
		t.Fatalf("fido2-cred -M wrote %d lines, want 6 or 7:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if lines[0] != b64(cdh) || lines[1] != rpID || lines[2] != "packed" {
		t.Errorf("fido2-cred -M echoed %q, %q, format %q; want the client data hash, %s, packed", lines[0], lines[1], lines[2], rpID)
	}
	ad := authData(t, lines[3])
	if ad.RPIDHash != fido.RPIDHash(rpID) || ad.Attested == nil {
		t.Fatalf("authenticator data for another RP or without a credential: %+v", ad)
	}
	id := unb64(t, lines[4])
	if !bytes.Equal(ad.Attested.CredentialID, id) {
		t.Errorf("credential ID %x, authenticator data has %x", id, ad.Attested.CredentialID)
	}
	if ad.Flags&ctap.FlagUP == 0 {
		t.Error("UP flag not set")
	}
	if len(lines) >= 7 {
		cert, err := x509.ParseCertificate(unb64(t, lines[6]))
		if err != nil {
			t.Fatalf("attestation certificate: %v", err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(e.ca.Certificate)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("attestation certificate does not chain to the key's CA: %v", err)
		}
	}

	// fido2-cred -V checks the attestation signature (and the flags and
	// extensions that verifyFlags name) and prints the public key.
	verified := filepath.Join(e.dir, "cred-verified")
	vargs := append([]string{"-V", "-i", out, "-o", verified}, verifyFlags...)
	if typ != "" {
		vargs = append(vargs, typ)
	}
	e.mustRun("", "fido2-cred", vargs...)
	vlines := e.read(verified)
	if vlines[0] != lines[4] {
		t.Errorf("fido2-cred -V printed credential %q, want %q", vlines[0], lines[4])
	}
	pubPEM := strings.Join(vlines[1:], "\n") + "\n"
	checkPEM(t, pubPEM, ad.Attested.PublicKey)

	// The check can fail: a tampered attestation signature is refused.
	bad := slices.Clone(lines)
	bad[5] = tamper(t, bad[5])
	if _, err := e.run("", "fido2-cred", append([]string{"-V", "-i", e.file("cred-bad", bad...)}, typArgs(typ)...)...); err == nil {
		t.Error("fido2-cred -V accepted a tampered attestation signature")
	}
	return &cred{id: id, pubPEM: pubPEM, userID: userID}, ad
}

func typArgs(typ string) []string {
	if typ == "" {
		return nil
	}
	return []string{typ}
}

// checkPEM checks that the PEM public key fido2-cred printed is the COSE
// key in the authenticator data.
func checkPEM(t testing.TB, pubPEM string, cose []byte) {
	t.Helper()
	block, _ := pem.Decode([]byte(pubPEM))
	if block == nil {
		t.Fatalf("no PEM in fido2-cred -V output: %q", pubPEM)
	}
	_, pub, err := ctap.ParsePublicKey(cose)
	if err != nil {
		t.Fatal(err)
	}
	want, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(block.Bytes, want) {
		t.Errorf("fido2-cred -V printed a key other than the attested one")
	}
}

func TestCredMakeVerify(t *testing.T) {
	tests := []struct {
		name        string
		flags       []string // for -M
		verifyFlags []string // for -V
		typ         string
		feature     string // an extension the key must offer
		resident    bool
		ext         map[string]any // expected extension outputs
	}{
		{name: "es256"},
		{name: "eddsa", typ: "eddsa"},
		{name: "resident", flags: []string{"-r"}, resident: true},
		{name: "hmac-secret", flags: []string{"-h"}, verifyFlags: []string{"-h"}, feature: "hmac-secret",
			ext: map[string]any{"hmac-secret": true}},
		{name: "credProtect", flags: []string{"-r", "-c", "2"}, verifyFlags: []string{"-c", "2"}, feature: "credProtect",
			resident: true, ext: map[string]any{"credProtect": uint64(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if tt.feature != "" {
				e.requireFeature(tt.feature+" (fido2-cred "+strings.Join(tt.flags, " ")+")", e.hasExtension(tt.feature))
			}
			c, ad := e.makeCred(t, "alice", tt.flags, tt.verifyFlags, tt.typ)
			stored := slices.ContainsFunc(e.key.Credentials(), func(k virtual.Credential) bool {
				return bytes.Equal(k.ID, c.id) && bytes.Equal(k.UserID, c.userID) && k.UserName == "alice"
			})
			if stored != tt.resident {
				t.Errorf("credential stored on the key: %v, want %v", stored, tt.resident)
			}
			got := extensions(t, ad)
			for k, v := range tt.ext {
				if fmt.Sprint(got[k]) != fmt.Sprint(v) {
					t.Errorf("extension output %s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestAssertGetVerify(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		resident bool
		getFlags []string
	}{
		{name: "es256"},
		{name: "eddsa", typ: "eddsa"},
		{name: "with up", getFlags: []string{"-p"}},
		{name: "resident", resident: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			var mflags []string
			if tt.resident {
				mflags = []string{"-r"}
			}
			c, _ := e.makeCred(t, "alice", mflags, nil, tt.typ)
			other, _ := e.makeCred(t, "bob", nil, nil, tt.typ)
			pub := e.file("pub.pem", strings.TrimRight(c.pubPEM, "\n"))
			otherPub := e.file("other.pem", strings.TrimRight(other.pubPEM, "\n"))

			cdh := random(32)
			inLines := []string{b64(cdh), rpID}
			args := []string{"-G"}
			if tt.resident {
				args = append(args, "-r")
			} else {
				inLines = append(inLines, b64(c.id))
			}
			out := filepath.Join(e.dir, "assert-out")
			args = append(append(args, tt.getFlags...), "-i", e.file("assert-in", inLines...), "-o", out, e.sock)
			e.mustRun("", "fido2-assert", args...)
			lines := e.read(out)
			want := 4
			if tt.resident {
				want = 5 // and the user ID
			}
			if len(lines) != want {
				t.Fatalf("fido2-assert -G wrote %d lines, want %d:\n%s", len(lines), want, strings.Join(lines, "\n"))
			}
			if lines[0] != b64(cdh) || lines[1] != rpID {
				t.Errorf("fido2-assert -G echoed %q, %q", lines[0], lines[1])
			}
			ad := authData(t, lines[2])
			if ad.RPIDHash != fido.RPIDHash(rpID) || ad.Flags&ctap.FlagUP == 0 || ad.Attested != nil {
				t.Errorf("assertion authenticator data: %+v", ad)
			}
			if tt.resident && lines[4] != b64(c.userID) {
				t.Errorf("user ID %q, want %q", lines[4], b64(c.userID))
			}

			verify := func(lines []string, pub string, flags ...string) error {
				args := append([]string{"-V"}, flags...)
				args = append(args, "-i", e.file("verify-in", lines[:4]...), pub)
				if tt.typ != "" {
					args = append(args, tt.typ)
				}
				_, err := e.run("", "fido2-assert", args...)
				return err
			}
			if err := verify(lines, pub); err != nil {
				t.Errorf("fido2-assert -V with the enrolled key: %v", err)
			}
			if err := verify(lines, pub, "-p"); err != nil {
				t.Errorf("fido2-assert -V -p (user presence signed): %v", err)
			}
			// The check can fail: a tampered signature, another
			// credential's key, another challenge.
			bad := slices.Clone(lines)
			bad[3] = tamper(t, bad[3])
			if verify(bad, pub) == nil {
				t.Error("fido2-assert -V accepted a tampered signature")
			}
			if verify(lines, otherPub) == nil {
				t.Error("fido2-assert -V accepted another credential's key")
			}
			bad = slices.Clone(lines)
			bad[0] = b64(random(32))
			if verify(bad, pub) == nil {
				t.Error("fido2-assert -V accepted another client data hash")
			}
			if verify(lines, pub, "-v") == nil {
				t.Error("fido2-assert -V -v accepted an assertion without user verification")
			}
		})
	}
}

func TestAssertHMACSecret(t *testing.T) {
	e := newEnv(t, nil)
	e.requireFeature("hmac-secret (fido2-assert -h)", e.hasExtension("hmac-secret"))
	c, _ := e.makeCred(t, "alice", []string{"-h"}, []string{"-h"}, "")
	salt := random(32)
	get := func(salt []byte) []string {
		out := filepath.Join(e.dir, "assert-out")
		in := e.file("assert-in", b64(random(32)), rpID, b64(c.id), b64(salt))
		e.mustRun("", "fido2-assert", "-G", "-h", "-i", in, "-o", out, e.sock)
		return e.read(out)
	}
	first, again, other := get(salt), get(salt), get(random(32))
	if len(first) != 5 {
		t.Fatalf("fido2-assert -G -h wrote %d lines, want 5", len(first))
	}
	if len(unb64(t, first[4])) != 32 {
		t.Errorf("hmac secret of %d bytes, want 32", len(unb64(t, first[4])))
	}
	if first[4] != again[4] {
		t.Error("hmac secret differs for the same salt and credential")
	}
	if first[4] == other[4] {
		t.Error("hmac secret is the same for another salt")
	}
	pub := e.file("pub.pem", strings.TrimRight(c.pubPEM, "\n"))
	if _, err := e.run("", "fido2-assert", "-V", "-h", "-i", e.file("verify-in", first[:4]...), pub); err != nil {
		t.Errorf("fido2-assert -V -h: %v", err)
	}
}

func TestTokenReset(t *testing.T) {
	clock := fidotest.NewClock()
	e := newEnv(t, &virtual.Config{Clock: clock.Now})
	e.makeCred(t, "alice", []string{"-r"}, nil, "")
	if len(e.key.Credentials()) != 1 {
		t.Fatal("no discoverable credential to reset")
	}

	clock.Advance(11 * time.Second)
	_, err := e.run("", "fido2-token", "-R", e.sock)
	if err == nil || !strings.Contains(err.Error(), "FIDO_ERR_NOT_ALLOWED") {
		t.Errorf("fido2-token -R 11 s after power-up: %v, want FIDO_ERR_NOT_ALLOWED", err)
	}
	if len(e.key.Credentials()) != 1 {
		t.Error("a refused reset erased credentials")
	}

	e.key.Replug()
	e.mustRun("", "fido2-token", "-R", e.sock)
	if n := len(e.key.Credentials()); n != 0 {
		t.Errorf("%d credentials after fido2-token -R", n)
	}
}

// The PIN tests below need clientPin on the virtual key (being added);
// until then they skip, saying PENDING.

// setPIN sets the key's PIN with fido2-token -S.
func (e *env) setPIN(pin string) {
	e.t.Helper()
	e.mustRun(pin+"\n"+pin+"\n", "fido2-token", "-S", e.sock)
}

// tokenInfo runs fido2-token -I and returns its "name: value" lines.
func (e *env) tokenInfo() map[string]string {
	e.t.Helper()
	got := map[string]string{}
	for _, l := range strings.Split(e.mustRun("", "fido2-token", "-I", e.sock), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			got[k] = v
		}
	}
	return got
}

func TestTokenSetPIN(t *testing.T) {
	e := newEnv(t, nil)
	e.requireFeature("clientPin (fido2-token -S)", e.hasOption("clientPin"))
	if got := e.tokenInfo()["options"]; !strings.Contains(got, "noclientPin") {
		t.Errorf("options before a PIN is set: %q, want noclientPin", got)
	}
	if _, err := e.run("12\n12\n", "fido2-token", "-S", e.sock); err == nil {
		t.Error("fido2-token -S accepted a 2-digit PIN")
	}
	e.setPIN("1234")
	info := e.tokenInfo()
	if opts := strings.Split(info["options"], ", "); !slices.Contains(opts, "clientPin") {
		t.Errorf("options after fido2-token -S: %q, want clientPin", info["options"])
	}
	if info["pin retries"] != "8" {
		t.Errorf("pin retries %q, want 8", info["pin retries"])
	}
}

func TestTokenChangePIN(t *testing.T) {
	e := newEnv(t, nil)
	e.requireFeature("clientPin (fido2-token -C)", e.hasOption("clientPin"))
	e.setPIN("1234")
	_, err := e.run("0000\n5678\n5678\n", "fido2-token", "-C", e.sock)
	if err == nil || !strings.Contains(err.Error(), "FIDO_ERR_PIN_INVALID") {
		t.Errorf("fido2-token -C with a wrong PIN: %v, want FIDO_ERR_PIN_INVALID", err)
	}
	if got := e.tokenInfo()["pin retries"]; got != "7" {
		t.Errorf("pin retries after a wrong PIN: %q, want 7", got)
	}
	e.mustRun("1234\n5678\n5678\n", "fido2-token", "-C", e.sock)
	if got := e.tokenInfo()["pin retries"]; got != "8" {
		t.Errorf("pin retries after the right PIN: %q, want 8", got)
	}
	// The new PIN is the one the key wants now.
	if _, err := e.run("1234\n9999\n9999\n", "fido2-token", "-C", e.sock); err == nil {
		t.Error("fido2-token -C accepted the old PIN")
	}
	e.mustRun("5678\n9999\n9999\n", "fido2-token", "-C", e.sock)
}

func TestTokenCredentials(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *virtual.Config
	}{
		{"CTAP 2.0 preview", &virtual.Config{CTAPVersion: virtual.CTAP20}},
		{"CTAP 2.1", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			e.requireFeature("credential management (fido2-token -L/-D)", e.hasOption("credMgmt") || e.hasOption("credentialMgmtPreview"))
			// libfido2 before 1.15 (Debian bookworm has 1.12) sends
			// credential management only as 0x41; a 2.1 key must
			// advertise and answer it too.
			if !e.hasOption("credentialMgmtPreview") {
				t.Fatal("the key does not advertise credentialMgmtPreview, which libfido2 before 1.15 needs")
			}
			e.testCredentials(t)
		})
	}
}

func (e *env) testCredentials(t *testing.T) {
	const pin = "4242"
	e.setPIN(pin)

	// With a PIN set, a discoverable credential needs it: fido2-cred
	// asks on stdin when run without -q.
	var ids []string
	for _, user := range []string{"alice", "bob"} {
		in := e.file("cred-in", b64(random(32)), rpID, user, b64([]byte("id-"+user)))
		out := filepath.Join(e.dir, "cred-out")
		e.mustRun(pin+"\n", "fido2-cred", "-M", "-r", "-i", in, "-o", out, e.sock)
		ids = append(ids, e.read(out)[4])
	}

	rps := e.mustRun(pin+"\n", "fido2-token", "-L", "-r", e.sock)
	hash := fido.RPIDHash(rpID)
	if want := "00: " + b64(hash[:]) + " " + rpID + "\n"; rps != want {
		t.Errorf("fido2-token -L -r:\n%s\nwant:\n%s", rps, want)
	}
	list := func() string { return e.mustRun(pin+"\n", "fido2-token", "-L", "-k", rpID, e.sock) }
	creds := list()
	for _, id := range ids {
		if !strings.Contains(creds, " "+id+" ") {
			t.Errorf("fido2-token -L -k %s does not list %s:\n%s", rpID, id, creds)
		}
	}

	e.mustRun(pin+"\n", "fido2-token", "-D", "-i", ids[0], e.sock)
	creds = list()
	if strings.Contains(creds, ids[0]) || !strings.Contains(creds, ids[1]) {
		t.Errorf("after fido2-token -D -i %s:\n%s", ids[0], creds)
	}
	if n := len(e.key.Credentials()); n != 1 {
		t.Errorf("the key holds %d credentials after the delete, want 1", n)
	}
}
