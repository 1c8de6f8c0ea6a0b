package virtual

import (
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/ctap"
)

// chainsTo checks that the DER certificate leaf verifies under root alone.
func chainsTo(t *testing.T, leaf []byte, root *x509.Certificate) {
	t.Helper()
	cert, err := x509.ParseCertificate(leaf)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	assert.NoError(t, err, "%s does not chain to the attestation root", cert.Subject)
}

// TestAttestationRootAccessor is issue 13 item 14: a key that generated
// its own attestation CA (Config.AttestationCA nil) gives its root
// certificate out, the packed and fido-u2f attestation certificates chain
// to it, and it survives a restart from the state file and a reset.
func TestAttestationRootAccessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	k, err := New(&Config{StatePath: path})
	require.NoError(t, err)
	root := k.AttestationRoot()
	require.NotNil(t, root)
	assert.True(t, root.IsCA)
	assert.Equal(t, defaultCACommonName, root.Subject.CommonName)
	require.NoError(t, root.CheckSignatureFrom(root), "self-signed")

	resp, _ := makeCredential(t, k, mcRequest("alice", false))
	var stmt struct {
		X5C [][]byte `cbor:"x5c"`
	}
	require.NoError(t, ctap.UnmarshalLenient("attStmt", resp.AttStmt, &stmt))
	require.Len(t, stmt.X5C, 1)
	chainsTo(t, stmt.X5C[0], root)
	r := u2fRegister(t, k, testApp)
	chainsTo(t, r.Certificate, root)

	s, _ := do(t, k, ctap.CmdReset, nil)
	require.Equal(t, ctap.StatusOK, s)
	assert.Equal(t, root.Raw, k.AttestationRoot().Raw, "reset keeps the CA")
	require.NoError(t, k.Close())

	again, err := New(&Config{StatePath: path})
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, root.Raw, again.AttestationRoot().Raw, "a restarted key keeps its root")

	ca, err := NewAttestationCA(nil, "fleet root")
	require.NoError(t, err)
	assert.Equal(t, ca.Certificate.Raw, newTestKey(t, &Config{AttestationCA: ca}).AttestationRoot().Raw)
}
