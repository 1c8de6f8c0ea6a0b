package main

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/fidokit/fidokit/mfa"
)

// codeSource gives the codes of a TOTP device: typed by the person, or,
// with virtual devices, computed from the device's secret as the phone or
// token would.
type codeSource struct {
	g    *guide
	what string
	// key is set for a virtual device: the guide plays it.
	key *otp.Key
}

func (c *codeSource) at(t time.Time) string {
	code, err := totp.GenerateCodeCustom(c.key.Secret(), t, totp.ValidateOpts{
		Period: uint(c.key.Period()), Digits: c.key.Digits(), Algorithm: c.key.Algorithm(),
	})
	if err != nil {
		panic(err) // the secret came from mfa or from this program
	}
	return code
}

// pair returns two consecutive codes, the second one current.
func (c *codeSource) pair() (string, string, error) {
	if c.key != nil {
		now := time.Now()
		first, second := c.at(now.Add(-30*time.Second)), c.at(now)
		c.g.say("          (Playing the %s: its codes %s, then %s.)", c.what, first, second)
		return first, second, nil
	}
	first, err := c.g.term.readLine(fmt.Sprintf("          Enter the code the %s shows: ", c.what))
	if err != nil {
		return "", "", err
	}
	second, err := c.g.term.readLine("          Wait for the next code, and enter it too: ")
	return first, second, err
}

// next returns a code not used yet, for the test sign-in.
func (c *codeSource) next() (string, error) {
	if c.key != nil {
		// The enrollment used the current step; the next one is within
		// the sign-in window, as a phone whose clock runs a little fast.
		return c.at(time.Now().Add(30 * time.Second)), nil
	}
	return c.g.term.readLine(fmt.Sprintf("          Wait for a new code on the %s and enter it: ", c.what))
}

// finish completes a TOTP enrollment, letting a person retry mistyped
// codes a few times.
func (g *guide) finish(ctx context.Context, e *mfa.Enrollment, codes *codeSource) (*mfa.Device, error) {
	for try := 1; ; try++ {
		first, second, err := codes.pair()
		if err != nil {
			return nil, err
		}
		d, err := g.m.FinishEnrollment(ctx, g.user.ID, e.ID, first, second)
		retry := errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrNotConsecutive) || errors.Is(err, mfa.ErrMalformedCode)
		if err == nil || !retry || codes.key != nil || try == 3 {
			return d, err
		}
		switch {
		case errors.Is(err, mfa.ErrNotConsecutive):
			g.say("          Those are not two codes in a row. Type one, wait for it to change, type the new one.")
		case errors.Is(err, mfa.ErrMalformedCode):
			g.say("          A code is %d digits.", e.Digits)
		default:
			g.say("          Those codes are not from this %s (is its clock right?). Try again.", codes.what)
		}
	}
}

func (g *guide) addOTP(d *mfa.Device, codes *codeSource) {
	g.added = append(g.added, &added{dev: d, signIn: func(ctx context.Context) (*mfa.Verification, error) {
		code, err := codes.next()
		if err != nil {
			return nil, err
		}
		v, err := g.m.VerifyTOTP(ctx, g.user.ID, code)
		if err == nil && v.Device.ID != d.ID {
			return nil, fmt.Errorf("the code matched %s, not the device just added", v.Device.ID)
		}
		return v, err
	}})
}

// enrollApp shows the QR code in the terminal and the secret in groups,
// then takes two consecutive codes.
func (g *guide) enrollApp(ctx context.Context) error {
	e, err := g.m.BeginApp(ctx, g.user.ID, fmt.Sprintf("Authenticator app %d", len(g.added)+1))
	if err != nil {
		return err
	}
	qr, err := qrcode.New(e.URI.Reveal(), qrcode.Low)
	if err != nil {
		return fmt.Errorf("drawing the QR code: %w", err)
	}
	g.say("          Scan this with your authenticator app (Google Authenticator, 1Password, Aegis, ...):")
	io.WriteString(g.out, indent(qr.ToSmallString(false), "          "))
	g.say("          Or type this secret key into it: %s", e.Secret.Reveal())
	codes := &codeSource{g: g, what: "app"}
	if g.virtual {
		if codes.key, err = otp.NewKeyFromURL(e.URI.Reveal()); err != nil {
			return err
		}
	}
	d, err := g.finish(ctx, e, codes)
	if err != nil {
		return fmt.Errorf("enrolling the app: %w", err)
	}
	g.say("          Added %q.", d.Name)
	g.addOTP(d, codes)
	return nil
}

// enrollToken assigns a hardware TOTP token by serial number from its
// seed file (or its secret), then takes two consecutive codes.
func (g *guide) enrollToken(ctx context.Context) error {
	tok := mfa.Token{Serial: g.o.serial}
	codes := &codeSource{g: g, what: "token"}
	switch {
	case g.virtual && g.o.seedFile == "" && g.o.secretFile == "":
		serial, path, key, err := g.virtualToken()
		if err != nil {
			return err
		}
		tok.Serial, codes.key = serial, key
		if tok.SeedFile, err = os.ReadFile(path); err != nil {
			return err
		}
	default:
		if tok.Serial == "" {
			s, err := g.term.readLine("          Serial number printed on the token: ")
			if err != nil {
				return err
			}
			tok.Serial = s
		}
		if err := g.tokenSeed(&tok); err != nil {
			return err
		}
	}
	e, err := g.m.BeginToken(ctx, g.user.ID, tok)
	if err != nil {
		return fmt.Errorf("assigning the token: %w", err)
	}
	g.say("          Token %s read from its seed; press its button for codes.", tok.Serial)
	d, err := g.finish(ctx, e, codes)
	if err != nil {
		return fmt.Errorf("assigning the token: %w", err)
	}
	g.say("          Added %q (serial %s).", d.Name, d.Serial)
	g.addOTP(d, codes)
	return nil
}

// tokenSeed fills in a real token's seed from the flags or the terminal.
func (g *guide) tokenSeed(tok *mfa.Token) error {
	switch {
	case g.o.seedFile != "":
		b, err := os.ReadFile(g.o.seedFile)
		if err != nil {
			return fmt.Errorf("reading -seed-file: %w", err)
		}
		tok.SeedFile = b
		if g.o.pskFile != "" {
			h, err := os.ReadFile(g.o.pskFile)
			if err != nil {
				return fmt.Errorf("reading -psk-file: %w", err)
			}
			if tok.PreSharedKey, err = hex.DecodeString(strings.TrimSpace(string(h))); err != nil {
				return errors.New("-psk-file: want the key in hex")
			}
		}
	case g.o.secretFile != "":
		b, err := os.ReadFile(g.o.secretFile)
		if err != nil {
			return fmt.Errorf("reading -secret-file: %w", err)
		}
		tok.Secret = strings.TrimSpace(string(b))
	default:
		s, err := g.term.readSecret("          The token's secret (base32, from its card): ")
		if err != nil {
			return err
		}
		tok.Secret = s
	}
	return nil
}

// virtualToken makes a token the guide can play: a random seed and a seed
// file (PSKC, RFC 6030, plain value) as a vendor would ship it.
func (g *guide) virtualToken() (serial, path string, key *otp.Key, err error) {
	seed := make([]byte, 20)
	if _, err := io.ReadFull(randReader, seed); err != nil {
		return "", "", nil, err
	}
	var n [3]byte
	io.ReadFull(randReader, n[:])
	serial = fmt.Sprintf("VIRT%08d", (int(n[0])<<16|int(n[1])<<8|int(n[2]))%100000000)
	dir, err := os.MkdirTemp("", "fidokit-token-")
	if err != nil {
		return "", "", nil, err
	}
	g.keys.onClose(func() { os.RemoveAll(dir) })
	path = filepath.Join(dir, serial+".pskc.xml")
	doc := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage>
    <DeviceInfo><Manufacturer>fidokit</Manufacturer><SerialNo>%s</SerialNo></DeviceInfo>
    <Key Id="%s" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret><PlainValue>%s</PlainValue></Secret>
        <TimeInterval><PlainValue>30</PlainValue></TimeInterval>
      </Data>
    </Key>
  </KeyPackage>
</KeyContainer>
`, serial, serial, base64.StdEncoding.EncodeToString(seed))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		return "", "", nil, err
	}
	g.say("          Virtual token %s; its vendor's seed file is %s", serial, path)
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	key, err = otp.NewKeyFromURL("otpauth://totp/token:" + serial + "?secret=" + b32)
	return serial, path, key, err
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}
