package mfa

import (
	"errors"
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// Secret is text meant for one person's eyes, once: a TOTP seed or an
// otpauth URI at enrollment, a recovery code. It prints, formats, logs
// and marshals as "[redacted]" so that it cannot leak by accident;
// [Secret.Reveal] is the one way to the text.
type Secret struct{ s string }

// Reveal returns the secret text.
func (s Secret) Reveal() string { return s.s }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// LogValue keeps the secret out of log/slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON refuses: a Secret goes into JSON only through Reveal, on
// purpose.
func (s Secret) MarshalJSON() ([]byte, error) {
	return nil, errors.New("mfa: a Secret is not marshalled; call Reveal where showing it is intended")
}

// MarshalText refuses, as MarshalJSON does.
func (s Secret) MarshalText() ([]byte, error) { return s.MarshalJSON() }

// IsZero reports whether there is no secret.
func (s Secret) IsZero() bool { return s.s == "" }
