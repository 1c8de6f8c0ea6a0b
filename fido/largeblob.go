package fido

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// LargeBlobStore reads and writes the per-credential blobs of a key's
// large-blob array (CTAP 2.1 §6.10). [Device] implements it, and so may
// other backends; find out with a type assertion.
//
// A blob belongs to the credential whose largeBlobKey
// (AttestationExtensions.LargeBlobKey or AssertionExtensions.LargeBlobKey)
// seals it: the data is DEFLATE-compressed and encrypted with AES-256-GCM
// under that key (§6.10.3), so the key stores it without being able to read
// it, and other credentials' blobs stay opaque. A key without large blobs
// gives ErrNotSupported.
type LargeBlobStore interface {
	// ReadLargeBlob returns the blob that largeBlobKey opens. None gives
	// ErrNoLargeBlob; an array whose integrity hash does not match gives
	// an error matching StatusIntegrityFailure.
	ReadLargeBlob(ctx context.Context, largeBlobKey []byte) ([]byte, error)
	// WriteLargeBlob stores data as the blob of largeBlobKey, replacing
	// any it had; nil data removes it. The whole array is rewritten, so it
	// needs a pinUvAuthToken with the largeBlobWrite permission on a key
	// with a PIN (with the PIN errors of [CredentialManager]). An array
	// too large for the key gives StatusLargeBlobStorageFull. An array
	// that fails its integrity check is replaced by one holding only this
	// blob, as §6.10.3 tells clients to treat it as empty.
	WriteLargeBlob(ctx context.Context, largeBlobKey, data []byte) error
}

var _ LargeBlobStore = (*Device)(nil)

// Large-blob sizes (CTAP 2.1 §6.10).
const (
	// fragmentOverhead is what a largeBlobs request needs besides the
	// fragment: a fragment is at most maxMsgSize - 64 bytes (§6.10.2).
	fragmentOverhead = 64
	// largeBlobNonceLen is the AES-GCM nonce length (§6.10.3).
	largeBlobNonceLen = 12
	// maxLargeBlobArray bounds what a client reads from a key that states
	// no maxSerializedLargeBlobArray, or an absurd one.
	maxLargeBlobArray = 1 << 20
	// maxLargeBlobSize bounds a blob's uncompressed size, so that a
	// hostile entry cannot make the client inflate without limit.
	maxLargeBlobSize = 16 << 20
)

// largeBlobInfo checks the key has large blobs and returns its info.
func (d *Device) largeBlobInfo(ctx context.Context, op string, largeBlobKey []byte) (*Info, error) {
	if len(largeBlobKey) != largeBlobKeyLen {
		return nil, invalidRequest("largeBlobKey is %d bytes, want 32", len(largeBlobKey))
	}
	info, err := d.cborInfo(ctx, op)
	if err != nil {
		return nil, err
	}
	if !info.opt(ctap.OptLargeBlobs) {
		return nil, fmt.Errorf("fido: %s: the key has no large-blob storage: %w", op, ErrNotSupported)
	}
	return info, nil
}

// fragmentLen is the largest fragment one largeBlobs request carries.
func fragmentLen(info *Info) int { return max(info.MaxMsgSize-fragmentOverhead, 1) }

// readLargeBlobArray reads the serialized large-blob array in fragments
// (CTAP 2.1 §6.10.2): a fragment shorter than asked for is the last.
func (d *Device) readLargeBlobArray(ctx context.Context, info *Info) ([]byte, error) {
	limit := maxLargeBlobArray
	if info.MaxSerializedLargeBlobArray > 0 {
		limit = min(info.MaxSerializedLargeBlobArray, limit)
	}
	n := uint64(fragmentLen(info))
	var out []byte
	for {
		body, err := d.call(ctx, ctap.CmdLargeBlobs, &ctap.LargeBlobsRequest{Get: &n, Offset: uint64(len(out))}, nil)
		if err != nil {
			return nil, err
		}
		r, err := ctap.DecodeLargeBlobsResponse(body)
		if err != nil {
			return nil, &ResponseError{Op: "largeBlobs", Err: err}
		}
		if uint64(len(r.Config)) > n {
			return nil, &ResponseError{Op: "largeBlobs", Err: fmt.Errorf("fragment of %d bytes, asked for %d", len(r.Config), n)}
		}
		out = append(out, r.Config...)
		if len(out) > limit {
			return nil, &ResponseError{Op: "largeBlobs", Err: fmt.Errorf("array longer than %d bytes", limit)}
		}
		if uint64(len(r.Config)) < n {
			return out, nil
		}
	}
}

// largeBlobAD is the associated data of a blob's encryption: "blob" ||
// uint64LittleEndian(origSize) (CTAP 2.1 §6.10.3).
func largeBlobAD(origSize uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte("blob"), origSize)
}

func largeBlobAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: largeBlobKey: %v", ErrInvalidRequest, err)
	}
	return cipher.NewGCM(b)
}

// openLargeBlob decrypts and inflates entry with aead, reporting false if
// the entry is not sealed under this key or does not decode; such entries
// belong to other credentials, or to nobody, and are skipped.
func openLargeBlob(aead cipher.AEAD, entry []byte) ([]byte, bool) {
	b, err := ctap.DecodeLargeBlob(entry)
	if err != nil || b.OrigSize > maxLargeBlobSize {
		return nil, false
	}
	compressed, err := aead.Open(nil, b.Nonce, b.Ciphertext, largeBlobAD(b.OrigSize))
	if err != nil {
		return nil, false
	}
	// DEFLATE as in RFC 1951, with no zlib header (CTAP 2.1 §6.10.3).
	r := flate.NewReader(bytes.NewReader(compressed))
	data, err := io.ReadAll(io.LimitReader(r, int64(b.OrigSize)+1))
	if err != nil || uint64(len(data)) != b.OrigSize {
		return nil, false
	}
	return data, true
}

// sealLargeBlob compresses and encrypts data into a large-blob map (CTAP
// 2.1 §6.10.3), encoded as one array entry.
func sealLargeBlob(aead cipher.AEAD, data []byte) (cbor.RawMessage, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		return nil, err
	}
	nonce := make([]byte, largeBlobNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	size := uint64(len(data))
	return ctap.Marshal(&ctap.LargeBlob{
		Ciphertext: aead.Seal(nil, nonce, buf.Bytes(), largeBlobAD(size)),
		Nonce:      nonce,
		OrigSize:   size,
	})
}

// ReadLargeBlob implements [LargeBlobStore] (CTAP 2.1 §6.10.3). Reading
// needs no PIN.
func (d *Device) ReadLargeBlob(ctx context.Context, largeBlobKey []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.largeBlobInfo(ctx, "readLargeBlob", largeBlobKey)
	if err != nil {
		return nil, err
	}
	aead, err := largeBlobAEAD(largeBlobKey)
	if err != nil {
		return nil, err
	}
	serialized, err := d.readLargeBlobArray(ctx, info)
	if err != nil {
		return nil, err
	}
	entries, err := ctap.DecodeLargeBlobArray(serialized)
	if err != nil {
		if errors.Is(err, ctap.StatusIntegrityFailure) {
			return nil, fmt.Errorf("fido: readLargeBlob: the key's large-blob array fails its integrity check: %w", err)
		}
		return nil, &ResponseError{Op: "largeBlobs", Err: err}
	}
	for _, e := range entries {
		if data, ok := openLargeBlob(aead, e); ok {
			return data, nil
		}
	}
	return nil, fmt.Errorf("fido: readLargeBlob: %w", ErrNoLargeBlob)
}

// WriteLargeBlob implements [LargeBlobStore] (CTAP 2.1 §6.10.3): it reads
// the array, drops the entries largeBlobKey opens, appends the new one and
// writes the array back in fragments of maxMsgSize - 64 bytes, each
// authenticated with the token (§6.10.2).
func (d *Device) WriteLargeBlob(ctx context.Context, largeBlobKey, data []byte) error {
	if len(data) > maxLargeBlobSize {
		return invalidRequest("blob of %d bytes", len(data))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.largeBlobInfo(ctx, "writeLargeBlob", largeBlobKey)
	if err != nil {
		return err
	}
	aead, err := largeBlobAEAD(largeBlobKey)
	if err != nil {
		return err
	}
	serialized, err := d.readLargeBlobArray(ctx, info)
	if err != nil {
		return err
	}
	entries, err := ctap.DecodeLargeBlobArray(serialized)
	switch {
	case errors.Is(err, ctap.StatusIntegrityFailure):
		entries = nil // §6.10.3: treat as the initial, empty array
	case err != nil:
		return &ResponseError{Op: "largeBlobs", Err: err}
	}
	var keep []cbor.RawMessage
	for _, e := range entries {
		if _, mine := openLargeBlob(aead, e); !mine {
			keep = append(keep, e)
		}
	}
	if data != nil {
		e, err := sealLargeBlob(aead, data)
		if err != nil {
			return fmt.Errorf("fido: writeLargeBlob: sealing: %w", err)
		}
		keep = append(keep, e)
	}
	array := ctap.SerializeLargeBlobArray(keep)
	if max := info.MaxSerializedLargeBlobArray; max > 0 && len(array) > max {
		return fmt.Errorf("fido: writeLargeBlob: array of %d bytes, the key holds %d: %w", len(array), max, StatusLargeBlobStorageFull)
	}
	var tok *pinToken
	if protected(info) {
		if tok, err = d.token(ctx, info, tokenRequest{op: "largeBlobs", perms: pinuv.PermLargeBlobWrite}); err != nil {
			return err
		}
		defer tok.wipe()
	}
	return d.writeLargeBlobArray(ctx, info, array, tok)
}

// writeLargeBlobArray writes a serialized array in fragments (CTAP 2.1
// §6.10.2); the key checks the hash and commits after the last one.
func (d *Device) writeLargeBlobArray(ctx context.Context, info *Info, array []byte, tok *pinToken) error {
	n := fragmentLen(info)
	for off := 0; off < len(array); off += n {
		r := &ctap.LargeBlobsRequest{Set: array[off:min(off+n, len(array))], Offset: uint64(off)}
		if off == 0 {
			r.Length = uint64(len(array))
		}
		if tok != nil {
			r.PinUvAuthProtocol = tok.proto.Version()
			r.PinUvAuthParam = tok.auth(r.AuthMessage())
		}
		if _, err := d.call(ctx, ctap.CmdLargeBlobs, r, nil); err != nil {
			return err
		}
	}
	return nil
}
