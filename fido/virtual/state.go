package virtual

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// stateVersion is the state file format this code writes. Version 1,
// from before PIN/UV support, is read too and upgraded (see loadState).
const stateVersion = 2

// maxStateFileSize bounds what loadState reads, so a wrong path (or a
// corrupt file) cannot make it allocate without limit. A full key with
// hundreds of resident credentials is a few hundred kilobytes.
const maxStateFileSize = 16 << 20

// StateError reports a virtual key state file that exists but cannot be
// used: it is not valid JSON, is of an unknown version, or holds keys or
// certificates that do not parse. Errors opening or reading the file are not
// StateErrors; a missing file gives an error wrapping fs.ErrNotExist.
type StateError struct {
	// Path is the state file.
	Path string
	// Err says what is wrong with it.
	Err error
}

// Error reports the file and the problem.
func (e *StateError) Error() string {
	return fmt.Sprintf("virtual: corrupt state file %s: %v", e.Path, e.Err)
}

// Unwrap returns the underlying problem.
func (e *StateError) Unwrap() error { return e.Err }

// state is everything a virtual key remembers across restarts. It holds
// private keys, so it lives only in memory and in a 0600 file.
//
// A state is not safe for concurrent use; the key's command handler
// serialises access to it.
type state struct {
	// Version is stateVersion.
	Version int
	// AAGUID names the key's model (WebAuthn L3 §6.5.1).
	AAGUID [16]byte
	// WrapSecret (32 bytes) seeds the key that seals non-discoverable
	// credentials into their IDs; see newKeyWrapper.
	WrapSecret []byte
	// Counter is the global signature counter (WebAuthn L3 §6.1.1).
	Counter uint32

	// CACert is the attestation CA certificate, DER.
	CACert []byte
	// CAKey is the CA's key, PKCS#8 DER, or empty when a caller-supplied CA
	// key cannot be exported (say, one in an HSM); it is needed only to
	// issue new attestation certificates.
	CAKey []byte
	// BatchCert and BatchKey (PKCS#8 DER) make packed attestations.
	BatchCert []byte
	BatchKey  []byte
	// U2FCert and U2FKey (PKCS#8 DER) make fido-u2f attestations.
	U2FCert []byte
	U2FKey  []byte

	// Credentials are the discoverable (resident) credentials.
	Credentials []residentCredential

	// PINHash is LEFT(SHA-256(PIN), 16), CurrentStoredPIN of CTAP 2.1
	// §6.5.5.5; nil while no PIN is set. The PIN itself is never kept.
	PINHash []byte `json:",omitempty"`
	// PINCodePoints is the PIN's length in Unicode code points
	// (PINCodePointLength, §6.5.5.5), so that setMinPINLength can tell
	// whether the PIN is now too short (§6.11.4).
	PINCodePoints int `json:",omitempty"`
	// PINRetries counts the wrong PINs left before the PIN blocks
	// (§6.5.5.2), and UVRetries the failed built-in UV attempts
	// (§6.5.5.3).
	PINRetries int
	UVRetries  int
	// AlwaysUV, MinPINLength, MinPINLengthRPIDs and ForcePINChange are
	// the authenticatorConfig settings (§6.11) and getInfo's alwaysUv,
	// minPINLength and forcePINChange (§6.4).
	AlwaysUV          bool
	MinPINLength      int
	MinPINLengthRPIDs []string `json:",omitempty"`
	ForcePINChange    bool     `json:",omitempty"`
	// LargeBlobs is the serialized large-blob array (§6.10); nil means the
	// initial empty one.
	LargeBlobs []byte `json:",omitempty"`

	// migrated marks a state loaded from an older version, whose new
	// settings New fills from the Config.
	migrated bool
}

// maxPINRetries is the number of wrong PINs a key allows in all before
// its PIN blocks (CTAP 2.1 §6.5.5.2 allows at most 8).
const maxPINRetries = 8

// residentCredential is a discoverable credential as the key stores it
// (CTAP 2.1 §6.1.2 "rk"). Created should be in UTC, without a monotonic
// reading, so a loaded state compares equal to the saved one.
type residentCredential struct {
	ID              []byte
	RPID            string
	RPName          string
	UserID          []byte
	UserName        string
	UserDisplayName string
	// Alg is the COSE algorithm; PrivateKey is its raw key as for
	// signerFromRaw.
	Alg        int64
	PrivateKey []byte
	Created    time.Time

	// CredProtect is the credProtect policy (CTAP 2.1 §12.1), 1 to 3; 0
	// in a version 1 file means 1.
	CredProtect int `json:",omitempty"`
	// CredRandomWithUV and CredRandomWithoutUV are the hmac-secret keys
	// (§12.5), 32 bytes each, or nil for a credential made without
	// hmac-secret.
	CredRandomWithUV    []byte `json:",omitempty"`
	CredRandomWithoutUV []byte `json:",omitempty"`
	// CredBlob is the credBlob stored with the credential (§12.2).
	CredBlob []byte `json:",omitempty"`
	// LargeBlobKey is the 32-byte largeBlobKey (§12.3), or nil.
	LargeBlobKey []byte `json:",omitempty"`
}

// protect returns the credential's credProtect policy.
func (c *residentCredential) protect() int { return max(c.CredProtect, ctap.CredProtectUVOptional) }

// newState makes the secrets and attestation certificates of a new key for
// model aaguid, under ca or, when ca is nil, under a new self-signed CA.
// A nil rand means crypto/rand.Reader.
func newState(rand io.Reader, aaguid [16]byte, ca *AttestationCA) (*state, error) {
	rand = orDefaultRand(rand)
	s := &state{Version: stateVersion, AAGUID: aaguid, PINRetries: maxPINRetries, UVRetries: maxUVRetries,
		MinPINLength: pinuv.MinPINCodePoints}

	s.WrapSecret = make([]byte, wrapSecretLen)
	if _, err := io.ReadFull(rand, s.WrapSecret); err != nil {
		return nil, fmt.Errorf("virtual: making wrap secret: %w", err)
	}

	if ca == nil {
		var err error
		if ca, err = NewAttestationCA(rand, ""); err != nil {
			return nil, err
		}
	}
	if ca.Certificate == nil || ca.Key == nil {
		return nil, errors.New("virtual: attestation CA has no certificate or key")
	}
	s.CACert = bytes.Clone(ca.Certificate.Raw)
	// A key that cannot be exported is left out rather than refused; the
	// certificates below are all the key needs from the CA afterwards.
	if der, err := x509.MarshalPKCS8PrivateKey(ca.Key); err == nil {
		s.CAKey = der
	}

	var err error
	var batchKey, u2fKey *ecdsa.PrivateKey
	if s.BatchCert, batchKey, err = newBatchCertificate(rand, ca, aaguid); err != nil {
		return nil, err
	}
	if s.BatchKey, err = x509.MarshalPKCS8PrivateKey(batchKey); err != nil {
		return nil, fmt.Errorf("virtual: encoding batch key: %w", err)
	}
	if s.U2FCert, u2fKey, err = newU2FCertificate(rand, ca); err != nil {
		return nil, err
	}
	if s.U2FKey, err = x509.MarshalPKCS8PrivateKey(u2fKey); err != nil {
		return nil, fmt.Errorf("virtual: encoding U2F key: %w", err)
	}
	return s, nil
}

// loadState reads a state saved by save. A missing file gives an error
// wrapping fs.ErrNotExist; a file that is there but unusable gives a
// *StateError. First it removes the temporary files that a save cut short
// by a crash left beside path (see removeStaleTemps), missing file or not.
func loadState(path string) (*state, error) {
	if err := removeStaleTemps(path); err != nil {
		return nil, fmt.Errorf("virtual: removing stale temporary state files: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("virtual: loading state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("virtual: loading state: %w", err)
	}
	if len(data) > maxStateFileSize {
		return nil, &StateError{Path: path, Err: fmt.Errorf("file larger than %d bytes", maxStateFileSize)}
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, &StateError{Path: path, Err: err}
	}
	if s.Version == 1 {
		// Version 1 keys had no PIN and no settings: a PIN-less key
		// with full retries. New fills in the Config's settings.
		s.Version, s.migrated = stateVersion, true
		s.PINRetries, s.UVRetries = maxPINRetries, maxUVRetries
		s.MinPINLength = pinuv.MinPINCodePoints
	}
	if err := s.validate(); err != nil {
		return nil, &StateError{Path: path, Err: err}
	}
	return &s, nil
}

// validate checks what JSON decoding cannot, so a state that loads is one
// the key can use without further error paths.
func (s *state) validate() error {
	if s.Version != stateVersion {
		return fmt.Errorf("unsupported version %d, want %d", s.Version, stateVersion)
	}
	if len(s.WrapSecret) != wrapSecretLen {
		return fmt.Errorf("wrap secret is %d bytes, want %d", len(s.WrapSecret), wrapSecretLen)
	}
	if _, err := parseCertAndKey("attestation CA", s.CACert, s.CAKey, true); err != nil {
		return err
	}
	batch, err := parseCertAndKey("batch", s.BatchCert, s.BatchKey, false)
	if err != nil {
		return err
	}
	// The AAGUID is in the batch certificate too; the two must agree or
	// relying parties reject every attestation (WebAuthn L3 §8.2.1).
	matched := false
	for _, ext := range batch.Extensions {
		if ext.Id.Equal(oidFIDOGenCEAAGUID) {
			var got []byte
			rest, err := asn1.Unmarshal(ext.Value, &got)
			matched = err == nil && len(rest) == 0 && bytes.Equal(got, s.AAGUID[:])
		}
	}
	if !matched {
		return errors.New("AAGUID does not match the batch certificate")
	}
	if _, err := parseCertAndKey("U2F", s.U2FCert, s.U2FKey, false); err != nil {
		return err
	}
	for i, c := range s.Credentials {
		if len(c.ID) == 0 {
			return fmt.Errorf("credential %d has no ID", i)
		}
		if _, err := signerFromRaw(c.Alg, c.PrivateKey); err != nil {
			return fmt.Errorf("credential %d: %w", i, err)
		}
		switch {
		case c.CredProtect < 0 || c.CredProtect > ctap.CredProtectUVRequired:
			return fmt.Errorf("credential %d: credProtect %d", i, c.CredProtect)
		case !lenIn(c.CredRandomWithUV, 0, credRandomLen) || !lenIn(c.CredRandomWithoutUV, 0, credRandomLen) ||
			(c.CredRandomWithUV == nil) != (c.CredRandomWithoutUV == nil):
			return fmt.Errorf("credential %d: hmac-secret keys of %d and %d bytes", i, len(c.CredRandomWithUV), len(c.CredRandomWithoutUV))
		case !lenIn(c.LargeBlobKey, 0, largeBlobKeyLen):
			return fmt.Errorf("credential %d: largeBlobKey of %d bytes", i, len(c.LargeBlobKey))
		}
	}
	switch {
	case !lenIn(s.PINHash, 0, pinuv.PINHashLen):
		return fmt.Errorf("PIN hash of %d bytes", len(s.PINHash))
	case s.PINRetries < 0 || s.PINRetries > maxPINRetries:
		return fmt.Errorf("PIN retries %d", s.PINRetries)
	case s.UVRetries < 0 || s.UVRetries > maxUVRetries:
		return fmt.Errorf("UV retries %d", s.UVRetries)
	case s.MinPINLength < pinuv.MinPINCodePoints || s.MinPINLength > pinuv.MaxPINBytes:
		return fmt.Errorf("minimum PIN length %d", s.MinPINLength)
	case s.PINCodePoints < 0 || s.PINCodePoints > pinuv.MaxPINBytes:
		return fmt.Errorf("PIN length %d", s.PINCodePoints)
	}
	if s.LargeBlobs != nil {
		if err := ctap.VerifyLargeBlobArray(s.LargeBlobs); err != nil {
			return fmt.Errorf("large-blob array: %w", err)
		}
	}
	return nil
}

// lenIn reports whether b has one of the lengths given.
func lenIn(b []byte, lengths ...int) bool {
	for _, n := range lengths {
		if len(b) == n {
			return true
		}
	}
	return false
}

// parseCertAndKey parses a certificate and its PKCS#8 key and checks that
// they belong together. An empty key is allowed when keyOptional.
func parseCertAndKey(name string, certDER, keyDER []byte, keyOptional bool) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("parsing %s certificate: %w", name, err)
	}
	if len(keyDER) == 0 && keyOptional {
		return cert, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("parsing %s key: %w", name, err)
	}
	signer, isSigner := k.(crypto.Signer)
	if !isSigner {
		return nil, fmt.Errorf("%s key of type %T cannot sign", name, k)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, canEqual := signer.Public().(equaler); !canEqual || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s key does not match its certificate", name)
	}
	return cert, nil
}

// batchKey returns the packed attestation key.
func (s *state) batchKey() (*ecdsa.PrivateKey, error) {
	return parseP256PKCS8("batch", s.BatchKey)
}

// u2fKey returns the fido-u2f attestation key.
func (s *state) u2fKey() (*ecdsa.PrivateKey, error) {
	return parseP256PKCS8("U2F", s.U2FKey)
}

// parseP256PKCS8 parses a PKCS#8 key that must be ECDSA P-256, the only
// kind the attestation formats here allow.
func parseP256PKCS8(name string, der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("virtual: parsing %s key: %w", name, err)
	}
	ec, isEC := k.(*ecdsa.PrivateKey)
	if !isEC || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("virtual: %s key is %T, want ECDSA P-256", name, k)
	}
	return ec, nil
}

// save writes s to path atomically: a crash at any point leaves the old file
// or the new one, never a mix, and the file is readable by its owner only.
func (s *state) save(path string) error {
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("virtual: encoding state: %w", err)
	}
	if err := writeFileAtomic(path, data, nil); err != nil {
		return fmt.Errorf("virtual: saving state: %w", err)
	}
	return nil
}

// tempPattern is the os.CreateTemp pattern of writeFileAtomic's temporary
// file for path.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// removeStaleTemps removes the temporary files of writeFileAtomic for path
// that a crash between their creation and the rename left behind. They hold
// the whole state, private keys included, so they must not pile up (issue
// 13 item 10). Only names writeFileAtomic makes for this path are touched.
//
// A temporary file of a save in progress would be removed too, so this is
// for when no other Key uses path: one state file serves one key at a time,
// as Config.StatePath says.
func removeStaleTemps(path string) error {
	dir, pattern := filepath.Dir(path), tempPattern(path)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no directory, no leftovers; saving will say what is wrong
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !matchTemp(pattern, e.Name()) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// matchTemp reports whether name is one os.CreateTemp made from pattern,
// which ends in the single "*" CreateTemp replaces. It compares literally,
// so a state file whose name holds glob metacharacters still matches.
func matchTemp(pattern, name string) bool {
	prefix := strings.TrimSuffix(pattern, "*")
	return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
}

// writeFileAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so the rename (and with it
// the new contents) survives a power loss. beforeRename, when not nil, runs
// after the temporary file is synced and closed; an error from it abandons
// the write, which lets tests stand in for a crash.
func writeFileAtomic(path string, data []byte, beforeRename func(tmp string) error) (err error) {
	dir := filepath.Dir(path)
	// The temporary file is in the same directory because rename is atomic
	// only within one file system. CreateTemp makes it 0600 from the start,
	// so the keys are never readable by others, even briefly.
	f, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Explicit, in case a platform's CreateTemp mode differs.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if beforeRename != nil {
		if err = beforeRename(tmp); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot sync a directory
// handle, so there the rename is as durable as the file system makes it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
