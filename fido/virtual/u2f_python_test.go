package virtual

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// TestU2FVersionExtendedLcZero is issue 13 item 11: U2F_VERSION as
// python-fido2 0.8 to 2.2 sends it, with an extended Lc of zero, is
// answered "U2F_V2" 9000 as a YubiKey answers it, directly and over
// CTAPHID_MSG; an unknown instruction is 6D00 however it is framed.
func TestU2FVersionExtendedLcZero(t *testing.T) {
	k := newTestKey(t, nil)
	before := snapshot(t, k)
	for _, tt := range []struct {
		name, apdu string
		body       string
		sw         ctap.StatusWord
	}{
		{"python-fido2 U2F_VERSION", "00 03 00 00 00 00 00 00 00", "U2F_V2", ctap.SWNoError},
		{"U2F_VERSION case 1", "00 03 00 00", "U2F_V2", ctap.SWNoError},
		{"U2F_VERSION case 2E", "00 03 00 00 00 00 00", "U2F_V2", ctap.SWNoError},
		{"U2F_VERSION zero Lc and a one-byte Le", "00 03 00 00 00 00 00 00", "", ctap.SWWrongLength},
		{"unknown INS, zero Lc", "00 44 00 00 00 00 00 00 00", "", ctap.SWInsNotSupported},
		{"unknown INS, bad lengths", "00 44 00 00 00 00 05 01", "", ctap.SWInsNotSupported},
		{"unknown INS, header only", "00 c0 00 00", "", ctap.SWInsNotSupported},
		{"bad CLA before INS", "80 44 00 00", "", ctap.SWClaNotSupported},
		{"short header", "00 03", "", ctap.SWWrongLength},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, sw := msg(t, k, unhexT(t, tt.apdu))
			assert.Equal(t, tt.sw, sw)
			assert.Equal(t, tt.body, string(body))
		})
	}
	checkUnchanged(t, k, before, "U2F_VERSION and unknown instructions")

	t.Run("over CTAPHID", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ch, err := hid.Open(ctx, k.Conn())
		require.NoError(t, err)
		defer ch.Close()
		resp, err := ch.Transact(ctx, hid.CmdMsg, unhexT(t, "00 03 00 00 00 00 00 00 00"), nil)
		require.NoError(t, err)
		assert.Equal(t, append([]byte("U2F_V2"), 0x90, 0x00), resp)
	})
}
