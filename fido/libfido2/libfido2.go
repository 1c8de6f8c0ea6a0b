//go:build cgo

package libfido2

/*
#cgo pkg-config: libfido2

// fidokit_sync does nothing; calling it is what matters (see syncWithC).
static void fidokit_sync(void) {}
*/
import "C"

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	gofido2 "github.com/keys-pub/go-libfido2"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
)

// cancelInterval is how often CTAPHID_CANCEL is repeated after the context
// ends, until the call returns: go-libfido2 can only cancel a call whose
// device it has opened, and a call may be between opening and sending.
const cancelInterval = 100 * time.Millisecond

// Device is a key opened through libfido2 by [Open]. It implements
// [fido.Authenticator].
//
// A Device is safe for concurrent use; its operations are serialised.
// Each one opens the key, talks to it and closes it again (go-libfido2's
// way), so other programs may use the key between operations.
type Device struct {
	path   string
	prompt fido.Prompt
	dev    *gofido2.Device

	mu     sync.Mutex // serialises operations; guards the fields below
	info   *fido.Info // cached
	closed bool
}

var _ fido.Authenticator = (*Device)(nil)

// Devices lists the FIDO keys libfido2 finds (through udev on Linux). A
// virtual key's socket is never among them: pass its path to [Open]. It
// returns an empty list, not an error, when there are none.
func Devices(ctx context.Context) ([]fido.DeviceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	locs, err := gofido2.DeviceLocations()
	if err != nil {
		return nil, fmt.Errorf("fido/libfido2: listing keys: %v", err)
	}
	out := make([]fido.DeviceInfo, 0, len(locs))
	for _, l := range locs {
		out = append(out, fido.DeviceInfo{
			Path:         l.Path,
			VendorID:     uint16(l.VendorID),
			ProductID:    uint16(l.ProductID),
			Manufacturer: l.Manufacturer,
			Product:      l.Product,
		})
	}
	return out, nil
}

// Open opens the key at path, such as /dev/hidraw3 on Linux or a virtual
// key's socket in a process started under the preload shim, and reads its
// info. A missing path, or one libfido2 cannot open as a key, matches
// fido.ErrNoDevice.
func (o *Opener) Open(ctx context.Context, path string) (*Device, error) {
	if path == "" {
		return nil, fmt.Errorf("fido/libfido2: opening: empty path: %w", fido.ErrNoDevice)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fido/libfido2: opening %s: %w", path, fido.ErrNoDevice)
	}
	ldev, err := gofido2.NewDevice(path)
	if err != nil {
		return nil, fmt.Errorf("fido/libfido2: opening %s: %v", path, err)
	}
	d := &Device{path: path, prompt: o.Prompt, dev: ldev}
	// go-libfido2 opens the key afresh for every call; reading the info
	// now makes a path that is no key fail here rather than later.
	if _, err := d.Info(ctx); err != nil {
		if errors.Is(err, errCannotOpen) {
			return nil, fmt.Errorf("fido/libfido2: opening %s: %w: libfido2 cannot open it "+
				"(no permission, not a FIDO HID device, or a virtual key's socket without the LD_PRELOAD shim)",
				path, fido.ErrNoDevice)
		}
		return nil, fmt.Errorf("fido/libfido2: opening %s: %w", path, err)
	}
	return d, nil
}

// DeviceInfo describes the key as opened: its path only, since
// go-libfido2 does not report a path's USB strings.
func (d *Device) DeviceInfo() fido.DeviceInfo { return fido.DeviceInfo{Path: d.path} }

// Close releases the key. Later operations fail.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// syncWithC makes an empty cgo call. The race detector treats every cgo
// call as synchronising with every other (C code may synchronise in ways
// it cannot see), and go-libfido2's Device.Cancel reads the device handle
// that its operations write without a lock. Calling this right before
// and after Cancel orders those accesses for the detector, as the C side
// already orders them for the hardware: a call blocked in libfido2 has
// written the handle long before.
func syncWithC() { C.fidokit_sync() }

// call runs f, one go-libfido2 call, under d.mu, sending CTAPHID_CANCEL
// to the key when ctx ends before f returns. Its error is translated for
// op.
func (d *Device) call(ctx context.Context, op string, f func() error) error {
	if d.closed {
		return fmt.Errorf("fido/libfido2: %s: %w", op, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fido/libfido2: %s: %w", op, err)
	}
	done := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTicker(cancelInterval)
		defer t.Stop()
		for {
			syncWithC()
			// An error means the key has gone or is not waiting;
			// either way f reports what happened.
			_ = d.dev.Cancel()
			syncWithC()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := f()
	close(done)
	<-watcher // so the next call's open does not race this Cancel
	if err != nil {
		return translate(ctx, op, err)
	}
	return nil
}

// touch tells the person a request that waits for a touch is going out.
func (d *Device) touch() {
	if d.prompt.Touch != nil {
		d.prompt.Touch()
	}
}

// Info describes the key. It is read once and cached (reset by Reset);
// see the package doc for the fields go-libfido2 leaves empty. A U2F-only
// key is described as supporting "U2F_V2" and ES256.
func (d *Device) Info(ctx context.Context) (*fido.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.infoLocked(ctx)
}

func (d *Device) infoLocked(ctx context.Context) (*fido.Info, error) {
	if d.info != nil {
		return d.info, nil
	}
	var li *gofido2.DeviceInfo
	err := d.call(ctx, "getInfo", func() (err error) {
		li, err = d.dev.Info()
		return err
	})
	if errors.Is(err, fido.ErrNotSupported) {
		// go-libfido2 refuses getInfo on a key without CBOR.
		d.info = &fido.Info{
			Versions:                         []string{"U2F_V2"},
			Options:                          map[string]bool{},
			Algorithms:                       []fido.Algorithm{fido.ES256},
			RemainingDiscoverableCredentials: -1,
		}
		return d.info, nil
	}
	if err != nil {
		return nil, err
	}
	info := &fido.Info{
		Versions:                         slices.Clone(li.Versions),
		Extensions:                       slices.Clone(li.Extensions),
		Options:                          make(map[string]bool, len(li.Options)),
		RemainingDiscoverableCredentials: -1,
	}
	copy(info.AAGUID[:], li.AAGUID)
	for _, o := range li.Options {
		info.Options[o.Name] = o.Value == gofido2.True
	}
	for _, p := range li.Protocols {
		info.PINUVAuthProtocols = append(info.PINUVAuthProtocols, int(p))
	}
	d.info = info
	return info, nil
}

func checkHash(h []byte) error {
	if len(h) != 32 {
		return invalidRequest("ClientDataHash is %d bytes, want 32", len(h))
	}
	return nil
}

func invalidRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", fido.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// checkIDs refuses empty credential IDs, which go-libfido2 would index
// out of range on.
func checkIDs(field string, ids [][]byte) error {
	for i, id := range ids {
		if len(id) == 0 {
			return invalidRequest("%s[%d] is empty", field, i)
		}
	}
	return nil
}

// credentialTypes maps algorithms to go-libfido2's credential types.
var credentialTypes = map[fido.Algorithm]gofido2.CredentialType{
	fido.ES256: gofido2.ES256,
	fido.EdDSA: gofido2.EDDSA,
	fido.RS256: gofido2.RS256,
}

// option is a request flag as a go-libfido2 option: true, or omitted.
func option(b bool) gofido2.OptionValue {
	if b {
		return gofido2.True
	}
	return gofido2.Default
}

// credProtects maps credential protection policies to go-libfido2's.
var credProtects = map[fido.CredProtect]gofido2.CredProtect{
	fido.CredProtectUVOptional:                     gofido2.CredProtectUVOptional,
	fido.CredProtectUVOptionalWithCredentialIDList: gofido2.CredProtectUVOptionalWithID,
	fido.CredProtectUVRequired:                     gofido2.CredProtectUVRequired,
}

// MakeCredential creates a credential on the key (enrolls it); see
// [fido.Authenticator]. User verification, when asked for or demanded by
// the key, uses its built-in verification or the PIN from Prompt.PIN. Of
// the extensions, hmac-secret and credProtect are supported; credBlob,
// minPinLength and largeBlobKey give an error wrapping
// fido.ErrNotSupported. For how else this backend differs from
// [fido.Device] (exclude lists, algorithms, user name) see the package
// doc.
func (d *Device) MakeCredential(ctx context.Context, req *fido.MakeCredentialRequest) (*fido.Attestation, error) {
	const op = "makeCredential"
	if err := checkHash(req.ClientDataHash); err != nil {
		return nil, err
	}
	if req.RP.ID == "" {
		return nil, invalidRequest("RP.ID is empty")
	}
	if n := len(req.User.ID); n < 1 || n > 64 {
		return nil, invalidRequest("User.ID is %d bytes, want 1 to 64", n)
	}
	if req.User.Name == "" {
		return nil, fmt.Errorf("fido/libfido2: makeCredential without User.Name: %w (go-libfido2 requires one)", fido.ErrNotSupported)
	}
	if err := checkIDs("ExcludeList", req.ExcludeList); err != nil {
		return nil, err
	}
	ext := req.Extensions
	if ext.CredBlob != nil || ext.MinPINLength || ext.LargeBlobKey {
		return nil, notSupported("makeCredential with the credBlob, minPinLength or largeBlobKey extension")
	}
	prot, ok := credProtects[ext.CredProtect]
	if ext.CredProtect != 0 && !ok {
		return nil, invalidRequest("unknown credProtect level %d", ext.CredProtect)
	}
	algs := req.Algorithms
	if len(algs) == 0 {
		algs = []fido.Algorithm{fido.ES256}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	uv, needPIN, err := uvPlan(info, op, req.UserVerification)
	if err != nil {
		return nil, err
	}
	opts := &gofido2.MakeCredentialOpts{RK: option(req.Discoverable), UV: uv}
	if ext.HMACSecret {
		opts.Extensions = append(opts.Extensions, gofido2.HMACSecretExtension)
	}
	if ext.CredProtect != 0 {
		switch {
		case slices.Contains(info.Extensions, "credProtect"):
			opts.CredProtect = prot
		case ext.EnforceCredProtect && ext.CredProtect > fido.CredProtectUVOptional:
			return nil, fmt.Errorf("fido/libfido2: makeCredential: credProtect %d enforced on a key without credProtect: %w", ext.CredProtect, fido.ErrNotSupported)
		}
	}
	if len(req.ExcludeList) > 0 {
		found, err := d.holds(ctx, op, req.RP.ID, req.ExcludeList)
		if err != nil {
			return nil, err
		}
		if found {
			return nil, fmt.Errorf("fido/libfido2: makeCredential: %w", fido.StatusCredentialExcluded)
		}
	}
	rp := gofido2.RelyingParty{ID: req.RP.ID, Name: req.RP.Name}
	user := gofido2.User{ID: req.User.ID, Name: req.User.Name, DisplayName: req.User.DisplayName}
	var att *gofido2.Attestation
	d.touch()
	err = d.withPIN(ctx, op, req.RP.ID, needPIN, func(pin string) error {
		err := fmt.Errorf("fido/libfido2: makeCredential: none of %v: %w", algs, fido.ErrNotSupported)
		for _, alg := range algs {
			typ, ok := credentialTypes[alg]
			if !ok {
				continue
			}
			err = d.call(ctx, op, func() (err error) {
				att, err = d.dev.MakeCredential(req.ClientDataHash, rp, user, typ, pin, opts)
				return err
			})
			// A key checks the algorithm before it waits for a
			// touch, so trying the next one costs the person nothing.
			if !errors.Is(err, fido.StatusUnsupportedAlgorithm) {
				break
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return attestationFrom(req.RP.ID, att)
}

// holds reports whether the key holds one of ids for rpID, asking without
// a touch (up=false). d.mu is held.
func (d *Device) holds(ctx context.Context, op, rpID string, ids [][]byte) (bool, error) {
	probe := func(ids [][]byte) (bool, error) {
		hash := make([]byte, 32) // any value: the signature is discarded
		err := d.call(ctx, op, func() error {
			_, err := d.dev.Assertion(rpID, hash, ids, "", &gofido2.AssertionOpts{UP: gofido2.False})
			return err
		})
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fido.StatusUPRequired):
			// libfido2's U2F path: the key knows the handle but
			// wants a touch to sign.
			return true, nil
		case errors.Is(err, fido.StatusNoCredentials):
			return false, nil
		}
		return false, err
	}
	found, err := probe(ids)
	if len(ids) > 1 && (errors.Is(err, fido.StatusLimitExceeded) || errors.Is(err, fido.StatusRequestTooLarge)) {
		// Too many for the key at once (go-libfido2 cannot read its
		// limit): one at a time.
		for _, id := range ids {
			if found, err = probe([][]byte{id}); found || err != nil {
				break
			}
		}
	}
	return found, err
}

// unwrapAuthData returns the raw authenticator data that libfido2 hands
// out CBOR-encoded (as a byte string).
func unwrapAuthData(op string, b []byte) ([]byte, error) {
	var raw []byte
	if err := ctap.Unmarshal("authenticator data", b, &raw); err != nil {
		return nil, &fido.ResponseError{Op: op, Err: err}
	}
	return raw, nil
}

func attestationFrom(rpID string, att *gofido2.Attestation) (*fido.Attestation, error) {
	const op = "makeCredential"
	authData, err := unwrapAuthData(op, att.AuthData)
	if err != nil {
		return nil, err
	}
	ad, err := ctap.ParseAuthData(authData)
	if err != nil {
		return nil, &fido.ResponseError{Op: op, Err: err}
	}
	if ad.Attested == nil {
		return nil, &fido.ResponseError{Op: op, Err: errors.New("authenticator data has no attested credential")}
	}
	if ad.RPIDHash != fido.RPIDHash(rpID) {
		return nil, &fido.ResponseError{Op: op, Err: errors.New("authenticator data is for another relying party")}
	}
	alg, _, err := ctap.ParsePublicKey(ad.Attested.PublicKey)
	if err != nil {
		return nil, &fido.ResponseError{Op: op, Err: err}
	}
	stmt, err := statement(att.Format, fido.Algorithm(alg), att.Sig, att.Cert)
	if err != nil {
		return nil, &fido.ResponseError{Op: op, Err: err}
	}
	exts, err := attestationExtensions(ad.Extensions)
	if err != nil {
		return nil, &fido.ResponseError{Op: op, Err: err}
	}
	return &fido.Attestation{
		Extensions:   exts,
		Format:       att.Format,
		AuthData:     authData,
		Statement:    stmt,
		CredentialID: ad.Attested.CredentialID,
		PublicKey:    ad.Attested.PublicKey,
		Algorithm:    fido.Algorithm(alg),
		AAGUID:       ad.Attested.AAGUID,
		SignCount:    ad.SignCount,
		UserPresent:  ad.Flags&ctap.FlagUP != 0,
		UserVerified: ad.Flags&ctap.FlagUV != 0,
	}, nil
}

// attestationExtensions reads the extension outputs a key signed in its
// authenticator data (CTAP 2.1 §12.1, §12.2, §12.4, §12.5).
func attestationExtensions(raw []byte) (fido.AttestationExtensions, error) {
	var out fido.AttestationExtensions
	if len(raw) == 0 {
		return out, nil
	}
	var m struct {
		HMACSecret   bool   `cbor:"hmac-secret"`
		CredProtect  uint64 `cbor:"credProtect"`
		CredBlob     bool   `cbor:"credBlob"`
		MinPINLength uint64 `cbor:"minPinLength"`
	}
	if err := ctap.UnmarshalLenient("extension outputs", raw, &m); err != nil {
		return out, err
	}
	out.HMACSecret = m.HMACSecret
	out.CredProtect = fido.CredProtect(min(m.CredProtect, 255))
	out.CredBlobStored = m.CredBlob
	out.MinPINLength = int(min(m.MinPINLength, 1<<16))
	return out, nil
}

// statement rebuilds the attestation statement (WebAuthn L3 §8.2 packed,
// §8.6 fido-u2f, §8.7 none) from the signature and certificate libfido2
// parsed out of it. Other formats give nil.
func statement(format string, credAlg fido.Algorithm, sig, cert []byte) ([]byte, error) {
	switch format {
	case "none":
		return ctap.Marshal(map[string]any{})
	case "fido-u2f":
		if len(cert) == 0 {
			return nil, errors.New("fido-u2f attestation without a certificate")
		}
		return ctap.Marshal(map[string]any{"sig": sig, "x5c": [][]byte{cert}})
	case "packed":
		if len(cert) == 0 { // self attestation: signed by the credential
			return ctap.Marshal(map[string]any{"alg": int64(credAlg), "sig": sig})
		}
		alg, err := certAlgorithm(cert)
		if err != nil {
			return nil, err
		}
		return ctap.Marshal(map[string]any{"alg": int64(alg), "sig": sig, "x5c": [][]byte{cert}})
	}
	return nil, nil
}

// certAlgorithm is the COSE algorithm a packed statement's "alg" names
// for an attestation certificate's key.
func certAlgorithm(der []byte) (fido.Algorithm, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return 0, fmt.Errorf("attestation certificate: %w", err)
	}
	switch pub := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return fido.ES256, nil
		case elliptic.P384():
			return -35, nil // ES384
		case elliptic.P521():
			return -36, nil // ES512
		}
	case ed25519.PublicKey:
		return fido.EdDSA, nil
	case *rsa.PublicKey:
		return fido.RS256, nil
	}
	return 0, fmt.Errorf("attestation certificate key %T is not one packed attestation names", c.PublicKey)
}

// GetAssertion signs in with the key; see [fido.Authenticator]. This
// backend returns one assertion at most (see the package doc). User
// verification is as for MakeCredential; of the extensions, hmac-secret
// (one or two salts) is supported, credBlob and largeBlobKey give an
// error wrapping fido.ErrNotSupported.
func (d *Device) GetAssertion(ctx context.Context, req *fido.GetAssertionRequest) ([]*fido.Assertion, error) {
	const op = "getAssertion"
	if err := checkHash(req.ClientDataHash); err != nil {
		return nil, err
	}
	if req.RPID == "" {
		return nil, invalidRequest("RPID is empty")
	}
	if err := checkIDs("AllowList", req.AllowList); err != nil {
		return nil, err
	}
	ext := req.Extensions
	if ext.CredBlob || ext.LargeBlobKey {
		return nil, notSupported("getAssertion with the credBlob or largeBlobKey extension")
	}
	up := gofido2.Default
	if req.NoUserPresence {
		up = gofido2.False
	}
	opts := &gofido2.AssertionOpts{UP: up}
	if h := ext.HMACSecret; h != nil {
		if len(h.Salt1) != 32 || h.Salt2 != nil && len(h.Salt2) != 32 {
			return nil, invalidRequest("hmac-secret salts of %d and %d bytes, want 32 (and 32 or none)", len(h.Salt1), len(h.Salt2))
		}
		// libfido2 takes both salts as one 64-byte value.
		opts.Extensions = []gofido2.Extension{gofido2.HMACSecretExtension}
		opts.HMACSalt = append(bytes.Clone(h.Salt1), h.Salt2...)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	uv, needPIN, err := uvPlan(info, op, req.UserVerification || info.Options["alwaysUv"])
	if err != nil {
		return nil, err
	}
	opts.UV = uv
	if !req.NoUserPresence {
		d.touch()
	}
	var la *gofido2.Assertion
	err = d.withPIN(ctx, op, req.RPID, needPIN, func(pin string) error {
		return d.call(ctx, op, func() (err error) {
			la, err = d.dev.Assertion(req.RPID, req.ClientDataHash, req.AllowList, pin, opts)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	a, err := assertionFrom(req, la)
	if err != nil {
		return nil, err
	}
	return []*fido.Assertion{a}, nil
}

func assertionFrom(req *fido.GetAssertionRequest, la *gofido2.Assertion) (*fido.Assertion, error) {
	const op = "getAssertion"
	authData, err := unwrapAuthData(op, la.AuthDataCBOR)
	if err != nil {
		return nil, err
	}
	ad, err := ctap.ParseAuthData(authData)
	if err != nil {
		return nil, &fido.ResponseError{Op: op, Err: err}
	}
	if ad.RPIDHash != fido.RPIDHash(req.RPID) {
		return nil, &fido.ResponseError{Op: op, Err: errors.New("authenticator data is for another relying party")}
	}
	a := &fido.Assertion{
		CredentialID: bytes.Clone(la.CredentialID),
		AuthData:     authData,
		Signature:    la.Sig,
		SignCount:    ad.SignCount,
		UserPresent:  ad.Flags&ctap.FlagUP != 0,
		UserVerified: ad.Flags&ctap.FlagUV != 0,
	}
	if len(a.CredentialID) == 0 && len(req.AllowList) == 1 {
		// CTAP 2.1 §6.2: the key may omit the credential when the
		// allowList had exactly one.
		a.CredentialID = bytes.Clone(req.AllowList[0])
	}
	if len(a.CredentialID) == 0 {
		return nil, &fido.ResponseError{Op: op, Err: errors.New("no credential in response")}
	}
	if len(req.AllowList) > 0 && !slices.ContainsFunc(req.AllowList, func(id []byte) bool { return bytes.Equal(id, a.CredentialID) }) {
		return nil, &fido.ResponseError{Op: op, Err: errors.New("key signed with a credential not in the allowList")}
	}
	if len(la.User.ID) > 0 {
		a.User = &fido.User{ID: bytes.Clone(la.User.ID)}
	}
	if req.Extensions.HMACSecret != nil && len(la.HMACSecret) > 0 {
		if len(la.HMACSecret) != 32 && len(la.HMACSecret) != 64 {
			return nil, &fido.ResponseError{Op: op, Err: fmt.Errorf("hmac-secret output of %d bytes", len(la.HMACSecret))}
		}
		out := &fido.HMACSecretOutput{Output1: bytes.Clone(la.HMACSecret[:32])}
		if len(la.HMACSecret) == 64 {
			out.Output2 = bytes.Clone(la.HMACSecret[32:])
		}
		a.Extensions.HMACSecret = out
	}
	return a, nil
}

// Reset erases every credential on the key and its PIN (CTAP 2.1 §6.6).
// Keys accept it only within seconds of being plugged in, and only with a
// touch. There is no undo.
func (d *Device) Reset(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.touch()
	err := d.call(ctx, "reset", func() error { return d.dev.Reset() })
	d.info = nil
	return err
}

// Wink is not available through go-libfido2; it returns an error wrapping
// fido.ErrNotSupported.
func (d *Device) Wink(ctx context.Context) error { return notSupported("wink") }

// Selection is not available through go-libfido2 v1.5.3; it returns an
// error wrapping fido.ErrNotSupported.
func (d *Device) Selection(ctx context.Context) error { return notSupported("selection") }

// errCannotOpen marks libfido2's failure to open the device path itself
// (FIDO_ERR_INTERNAL from fido_dev_open).
var errCannotOpen = errors.New("libfido2 cannot open the device")

// libCodes are go-libfido2's error values and the FIDO_ERR_* codes they
// stand for (fido/err.h): CTAP status bytes when positive, libfido2's own
// conditions when negative.
var libCodes = []struct {
	err  error
	code int
}{
	{gofido2.ErrTX, -1},
	{gofido2.ErrRX, -2},
	{gofido2.ErrRXNotCBOR, -3},
	{gofido2.ErrRXInvalidCBOR, -4},
	{gofido2.ErrInvalidArgument, -7},
	{gofido2.ErrUserPresenceRequired, -8},
	{gofido2.ErrInternal, -9},
	{gofido2.ErrInvalidCommand, 0x01},
	{gofido2.ErrInvalidLength, 0x03},
	{gofido2.ErrMissingParameter, 0x14},
	{gofido2.ErrInvalidCredential, 0x22},
	{gofido2.ErrOperationDenied, 0x27},
	{gofido2.ErrUnsupportedOption, 0x2b},
	{gofido2.ErrInvalidOption, 0x2c},
	{gofido2.ErrKeepaliveCancel, 0x2d},
	{gofido2.ErrNoCredentials, 0x2e},
	{gofido2.ErrNotAllowed, 0x30},
	{gofido2.ErrPinInvalid, 0x31},
	{gofido2.ErrPinAuthBlocked, 0x34},
	{gofido2.ErrPinNotSet, 0x35},
	{gofido2.ErrPinRequired, 0x36},
	{gofido2.ErrPinPolicyViolation, 0x37},
	{gofido2.ErrActionTimeout, 0x3a},
	{gofido2.ErrUPRequired, 0x3b},
	{gofido2.ErrOther, 0x7f},
}

// code returns the FIDO_ERR_* code behind a go-libfido2 error.
func code(err error) (int, bool) {
	var e gofido2.Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	for _, c := range libCodes {
		if errors.Is(err, c.err) {
			return c.code, true
		}
	}
	return 0, false
}

// translate turns a go-libfido2 error into package fido's error values,
// keeping go-libfido2's text (not its values) for people.
func translate(ctx context.Context, op string, err error) error {
	var mapped error
	c, ok := code(err)
	switch {
	case errors.Is(err, gofido2.ErrNotFIDO2):
		mapped = fmt.Errorf("%w: the key speaks only U2F (%v)", fido.ErrNotSupported, err)
	case !ok:
		mapped = fmt.Errorf("libfido2: %v", err)
	case c > 0 && c <= 0xff:
		mapped = fmt.Errorf("%w (libfido2: %v)", fido.Status(c), err)
	case c == -1 || c == -2:
		mapped = fmt.Errorf("%w (libfido2: %v)", fido.ErrDeviceGone, err)
	case c == -3 || c == -4:
		return &fido.ResponseError{Op: op, Err: fmt.Errorf("libfido2: %v", err)}
	case c == -7:
		mapped = fmt.Errorf("%w (libfido2: %v)", fido.ErrInvalidRequest, err)
	case c == -8:
		// U2F keys: the key holds the credential but needs a touch.
		mapped = fmt.Errorf("%w (libfido2: %v)", fido.StatusUPRequired, err)
	case c == -9 && isOpenFailure(err):
		mapped = fmt.Errorf("%w (libfido2: %v)", errCannotOpen, err)
	default:
		mapped = fmt.Errorf("libfido2: %v", err)
	}
	if ctx.Err() != nil {
		// A key answering CANCEL with CTAP2_ERR_KEEPALIVE_CANCEL: the
		// caller's cancellation, as package fido reports it.
		return fmt.Errorf("fido/libfido2: %s: %w", op, errors.Join(ctx.Err(), mapped))
	}
	return fmt.Errorf("fido/libfido2: %s: %w", op, mapped)
}

// isOpenFailure reports whether err is go-libfido2 failing to open the
// device (its "failed to open" wrap), rather than failing later.
func isOpenFailure(err error) bool {
	return bytes.HasPrefix([]byte(err.Error()), []byte("failed to open"))
}
