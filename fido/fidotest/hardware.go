package fidotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
)

// Environment of the hardware tier, as piv-go's tests take a real
// YubiKey: nothing touches a real key unless it is named.
const (
	// DeviceEnv names the real key to run [RunHardware] against, such
	// as /dev/hidraw3 (a virtual key's socket works too).
	DeviceEnv = "FIDOKIT_TEST_DEVICE"
	// PINEnv gives the key's PIN, when it has one.
	PINEnv = "FIDOKIT_TEST_PIN"
)

// HardwareOptions configure [RunHardware].
type HardwareOptions struct {
	// Wipe allows the destructive steps: reset (which erases every
	// credential on the key) and setting and changing its PIN. The tests
	// set it from the -fido-wipe-key flag only.
	Wipe bool
	// PIN is the key's PIN, if it has one; with Wipe it is the PIN the
	// suite sets after the reset (empty means "fidotest-pin").
	PIN string
	// Say tells the person at the key what to do (touch it, replug
	// it). Nil means t.Log.
	Say func(string)
}

// OpenHardware opens the key named by FIDOKIT_TEST_DEVICE with a prompt
// that asks for touches through t.Log and answers PIN requests from
// FIDOKIT_TEST_PIN. Without the variable it skips t, saying how to run
// the hardware tier: this is the one tier CI cannot run, since no CI
// machine has a key.
func OpenHardware(t *testing.T) fido.Authenticator {
	t.Helper()
	path := os.Getenv(DeviceEnv)
	if path == "" {
		t.Skipf("hardware tier: set %s=/dev/hidrawN (and %s if the key has a PIN) to run this suite against a real key; add -fido-wipe-key to allow reset and PIN changes", DeviceEnv, PINEnv)
	}
	opener := &fido.Opener{Prompt: fido.Prompt{
		Touch: func() { t.Log("touch the security key now") },
		PIN: func(ctx context.Context, req fido.PINRequest) (string, error) {
			if pin := os.Getenv(PINEnv); pin != "" && !req.Retry {
				return pin, nil
			}
			return "", fmt.Errorf("set %s to the key's PIN", PINEnv)
		},
	}}
	a, err := opener.Open(t.Context(), path)
	require.NoError(t, err, "opening %s", path)
	t.Cleanup(func() { a.Close() })
	return a
}

// RunHardware runs the behaviours that need no access to the key's
// insides against a, which may be a real key: info, an enrollment and
// sign-ins verified by go-webauthn (an independent relying party), the
// exclude list, an unknown credential, and the PIN retry counter; with
// opts.Wipe also a reset and the PIN's life. Each step that needs a
// touch says so first.
func RunHardware(t *testing.T, a fido.Authenticator, opts HardwareOptions) {
	say := opts.Say
	if say == nil {
		say = func(s string) { t.Log(s) }
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(t.Context(), time.Minute)
		t.Cleanup(cancel)
		return c
	}

	if opts.Wipe {
		t.Run("Reset", func(t *testing.T) {
			r, ok := a.(interface{ Reset(context.Context) error })
			if !ok {
				t.Skip("this backend cannot reset a key")
			}
			say("reset: the key must have been plugged in within the last 10 seconds; replug it if not, then touch it")
			require.NoError(t, r.Reset(ctx(t)))
		})
		t.Run("SetPIN", func(t *testing.T) {
			pm, ok := a.(fido.PINManager)
			if !ok {
				t.Skip("this backend has no PIN management")
			}
			pin := opts.PIN
			if pin == "" {
				pin = "fidotest-pin"
			}
			require.NoError(t, pm.SetPIN(ctx(t), pin))
			retries, _, err := pm.PINRetries(ctx(t))
			require.NoError(t, err)
			assert.Equal(t, 8, retries)
			err = pm.ChangePIN(ctx(t), "wrong-"+pin, pin+"-2")
			var pe *fido.PINError
			require.ErrorAs(t, err, &pe)
			assert.ErrorIs(t, err, fido.StatusPINInvalid)
			assert.Equal(t, 7, pe.Retries)
			require.NoError(t, pm.ChangePIN(ctx(t), pin, pin+"-2"))
			require.NoError(t, pm.ChangePIN(ctx(t), pin+"-2", pin))
		})
	}

	t.Run("Info", func(t *testing.T) {
		info, err := a.Info(ctx(t))
		require.NoError(t, err)
		assert.NotEmpty(t, info.Versions)
		assert.Len(t, info.AAGUID, 16)
	})

	t.Run("WebAuthn", func(t *testing.T) {
		client := &fido.WebAuthnClient{Authenticator: a, Origin: Origin}
		rp, err := gowebauthn.New(&gowebauthn.Config{RPID: RPID, RPDisplayName: "fidotest", RPOrigins: []string{Origin}})
		require.NoError(t, err)
		u := &account{id: []byte("fidotest-hardware-" + time.Now().Format("150405.000")), name: "fidotest"}

		say("registering: touch the key")
		creation, session, err := rp.BeginRegistration(u, gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
		require.NoError(t, err)
		resp, err := client.Create(ctx(t), mustJSON(t, creation))
		require.NoError(t, err)
		parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
		require.NoError(t, rpError(err))
		cred, err := rp.CreateCredential(u, *session, parsed)
		require.NoError(t, rpError(err), "go-webauthn refuses the registration")
		u.creds = append(u.creds, *cred)

		say("registering the same key again: touch it; it must refuse")
		creation, _, err = rp.BeginRegistration(u, gowebauthn.WithExclusions(u.exclusions()))
		require.NoError(t, err)
		_, err = client.Create(ctx(t), mustJSON(t, creation))
		assert.ErrorIs(t, err, fido.StatusCredentialExcluded)

		last := cred.Authenticator.SignCount
		for i := range 2 {
			say(fmt.Sprintf("signing in (%d of 2): touch the key", i+1))
			assertion, session, err := rp.BeginLogin(u)
			require.NoError(t, err)
			resp, err := client.Get(ctx(t), mustJSON(t, assertion))
			require.NoError(t, err)
			parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
			require.NoError(t, rpError(err))
			used, err := rp.ValidateLogin(u, *session, parsed)
			require.NoError(t, rpError(err), "go-webauthn refuses the sign-in")
			assert.True(t, bytes.Equal(used.ID, cred.ID))
			if last != 0 || used.Authenticator.SignCount != 0 {
				assert.Greater(t, used.Authenticator.SignCount, last, "the signature counter increases")
			}
			last = used.Authenticator.SignCount
		}
	})

	t.Run("UnknownCredential", func(t *testing.T) {
		_, err := a.GetAssertion(ctx(t), &fido.GetAssertionRequest{
			RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{randomID()},
		})
		assert.True(t, errors.Is(err, fido.StatusNoCredentials), "an allow list the key holds none of: %v", err)
	})

	t.Run("PINRetries", func(t *testing.T) {
		pm, ok := a.(fido.PINManager)
		if !ok {
			t.Skip("this backend has no PIN management")
		}
		info, err := a.Info(ctx(t))
		require.NoError(t, err)
		if set, supported := info.Option("clientPin"); !supported || !set {
			t.Skip("the key has no PIN set")
		}
		retries, _, err := pm.PINRetries(ctx(t))
		require.NoError(t, err)
		assert.Positive(t, retries)
	})
}
