package fido_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// TestNoPINLeaks runs the whole PIN flow, wrong PINs and refusals
// included, against a virtual key that keeps its state in a file, with
// every log line captured, and then looks for the PINs in the logs, in
// every error's text and in the state file, raw and encoded.
func TestNoPINLeaks(t *testing.T) {
	const (
		pin1     = "Sekrit-PIN-7391"
		pin2     = "Other-PIN-4826"
		wrong    = "Wrong-PIN-5150"
		tooShort = "Q9z"
	)
	var logs bytes.Buffer
	oldDefault, oldOut, oldFlags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.SetOutput(&logs)
	t.Cleanup(func() {
		slog.SetDefault(oldDefault)
		log.SetOutput(oldOut)
		log.SetFlags(oldFlags)
	})

	state := filepath.Join(t.TempDir(), "key.json")
	k, err := virtual.New(&virtual.Config{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	prompt := &pinPrompt{}
	d := openWithPrompt(t, k, true, fido.Prompt{PIN: prompt.ask})
	ctx := ctxT(t)

	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v", err)
		}
	}
	note(d.SetPIN(ctx, tooShort))
	must(d.SetPIN(ctx, pin1))
	note(d.SetPIN(ctx, pin2))
	note(d.ChangePIN(ctx, wrong, pin2))
	note(d.ChangePIN(ctx, pin1, tooShort))
	must(d.ChangePIN(ctx, pin1, pin2))

	mc := makeReq("example.com", "alice")
	mc.UserVerification, mc.Discoverable = true, true
	mc.Extensions.CredBlob = []byte("blob")
	prompt.script(wrong, pin2)
	att, err := d.MakeCredential(ctx, mc)
	must(err)
	prompt.script(wrong) // then declines
	note(func() error {
		_, err := d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: hash("x"), UserVerification: true})
		return err
	}())
	prompt.script(tooShort)
	note(func() error {
		_, err := d.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: hash("x"), UserVerification: true})
		return err
	}())
	prompt.script(pin2)
	get := getReq("example.com", att.CredentialID)
	get.UserVerification = true
	get.Extensions.HMACSecret = &fido.HMACSecretInput{Salt1: salt("1")}
	_, err = d.GetAssertion(ctx, get)
	must(err)
	// Three wrong in a row, then the blocked state.
	prompt.script(wrong, wrong, wrong)
	note(func() error { _, err := d.GetAssertion(ctx, get); return err }())
	note(func() error { _, err := d.GetAssertion(ctx, get); return err }())
	k.Replug()

	// Management calls, where the key supports them.
	prompt.script(pin2, pin2, pin2, pin2, pin2)
	if _, err := d.Credentials(ctx, "example.com"); err != nil {
		note(err)
	}
	note(d.SetMinPINLength(ctx, 5, nil, false))
	if len(att.Extensions.LargeBlobKey) == 32 {
		note(d.WriteLargeBlob(ctx, att.Extensions.LargeBlobKey, []byte("large")))
	}
	prompt.script()
	note(d.DeleteCredential(ctx, att.CredentialID)) // declined: an error

	// The WebAuthn client's errors too.
	c := client(d)
	prompt.script(wrong)
	_, err = c.Get(ctx, requestOptionsJSON(t, att.CredentialID))
	note(err)

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	stateFile, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) < 8 {
		t.Errorf("only %d errors collected; the flow did not run as meant", len(errs))
	}
	// A caller logging what it got is the usual way a secret reaches a
	// log: do it, so that the logs are checked with content in them.
	for _, e := range errs {
		slog.Error("fido operation failed", "err", e)
		log.Printf("fido: %+v", e)
	}
	var errText strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&errText, "%v\n%+v\n%s\n%#v\n", e, e, e.Error(), e)
		for u := errors.Unwrap(e); u != nil; u = errors.Unwrap(u) {
			fmt.Fprintf(&errText, "%v\n", u)
		}
	}
	places := map[string][]byte{
		"logs":        logs.Bytes(),
		"errors":      []byte(errText.String()),
		"state file":  stateFile,
		"PIN prompts": []byte(fmt.Sprintf("%+v", prompt.requests())),
	}
	for _, pin := range []string{pin1, pin2, wrong, tooShort} {
		forms := map[string]string{
			"raw":              pin,
			"hex":              hex.EncodeToString([]byte(pin)),
			"HEX":              strings.ToUpper(hex.EncodeToString([]byte(pin))),
			"base64":           base64.StdEncoding.EncodeToString([]byte(pin)),
			"base64 unpadded":  base64.RawStdEncoding.EncodeToString([]byte(pin)),
			"base64url":        base64.URLEncoding.EncodeToString([]byte(pin)),
			"base64url raw":    base64.RawURLEncoding.EncodeToString([]byte(pin)),
			"padded, base64":   base64.StdEncoding.EncodeToString(append([]byte(pin), make([]byte, 64-len(pin))...)),
			"padded, hex":      hex.EncodeToString(append([]byte(pin), make([]byte, 64-len(pin))...)),
			"Go byte slice":    fmt.Sprintf("%v", []byte(pin)),
			"Go quoted string": fmt.Sprintf("%q", pin),
		}
		for where, data := range places {
			for form, s := range forms {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("PIN %q found in %s as %s", pin, where, form)
				}
			}
		}
	}
	t.Logf("checked %d bytes of logs, %d errors, a %d-byte state file", logs.Len(), len(errs), len(stateFile))
}

// requestOptionsJSON is PublicKeyCredentialRequestOptionsJSON for
// example.com requiring user verification.
func requestOptionsJSON(t *testing.T, id []byte) []byte {
	t.Helper()
	return []byte(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rpId":"example.com","userVerification":"required","allowCredentials":[{"type":"public-key","id":"` +
		base64.RawURLEncoding.EncodeToString(id) + `"}]}`)
}
