package ctap

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseAPDUExtendedLcZero is issue 13 item 11: python-fido2 (0.8 to
// 2.2) frames a request without data with an extended Lc of zero and an
// extended Le, "00 03 00 00 | 00 0000 | 0000" for U2F_VERSION. That is no
// data, not a length error; other lengths after a zero Lc still are.
func TestParseAPDUExtendedLcZero(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want APDU
	}{
		{"python-fido2 U2F_VERSION", "00 03 00 00 00 00 00 00 00", APDU{INS: U2FVersion, Le: 65536}},
		{"Le 256", "00 03 00 00 00 00 00 01 00", APDU{INS: U2FVersion, Le: 256}},
		{"unknown INS", "00 44 01 02 00 00 00 00 00", APDU{INS: 0x44, P1: 1, P2: 2, Le: 65536}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAPDU(unhex(t, tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, *got)
			assert.Nil(t, got.Data, "no data means nil Data")
			again, err := ParseAPDU(got.Marshal())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
	for _, in := range []string{
		"00 03 00 00 00 00 00 00",       // one Le byte
		"00 03 00 00 00 00 00 00 00 00", // three Le bytes
		"00 03 00 00 00 00 00 01 02 03 04",
	} {
		_, err := ParseAPDU(unhex(t, in))
		assert.ErrorIs(t, err, SWWrongLength, in)
	}
}
