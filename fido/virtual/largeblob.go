package virtual

import (
	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// minLargeBlobArray is the least maxSerializedLargeBlobArray CTAP 2.1
// §6.10 allows.
const minLargeBlobArray = 1024

// largeBlobArrayMinLen is the shortest serialized array: an empty CBOR
// array and its 16-byte hash (§6.10.2).
const largeBlobArrayMinLen = 17

// largeBlobWrite is a write of the large-blob array in fragments
// (§6.10.2 expectedLength and expectedNextOffset).
type largeBlobWrite struct {
	length int
	buf    []byte
}

// maxFragmentLength is the most a large-blob read or write carries at
// once: maxMsgSize less 64 bytes for the rest of the message (§6.10.2).
func (k *Key) maxFragmentLength() int { return k.cfg.MaxMsgSize - 64 }

// largeBlobArray returns the stored array. The caller holds k.mu.
func (k *Key) largeBlobArray() []byte {
	if k.st.LargeBlobs == nil {
		return ctap.InitialLargeBlobArray()
	}
	return k.st.LargeBlobs
}

// largeBlobs follows CTAP 2.1 §6.10.2. A write is committed only when the
// last fragment arrives and the whole array's hash checks out
// (INTEGRITY_FAILURE otherwise); until then the old array stays.
func (k *Key) largeBlobs(params []byte) []byte {
	r, err := ctap.DecodeLargeBlobsRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	arr := k.largeBlobArray()
	if r.Get != nil {
		switch {
		case *r.Get > uint64(k.maxFragmentLength()):
			return statusOnly(ctap.StatusInvalidLength)
		case r.Offset > uint64(len(arr)):
			return statusOnly(ctap.StatusInvalidParameter)
		}
		end := min(r.Offset+*r.Get, uint64(len(arr)))
		return ctap.EncodeResponse(&ctap.LargeBlobsResponse{Config: append([]byte{}, arr[r.Offset:end]...)})
	}
	if len(r.Set) > k.maxFragmentLength() {
		return statusOnly(ctap.StatusInvalidLength)
	}
	length := 0
	if r.Offset == 0 {
		if r.Length > uint64(k.cfg.MaxSerializedLargeBlobArray) {
			return statusOnly(ctap.StatusLargeBlobStorageFull)
		}
		if r.Length < largeBlobArrayMinLen {
			return statusOnly(ctap.StatusInvalidParameter)
		}
		length = int(r.Length)
	} else {
		if k.blobWrite == nil || r.Offset != uint64(len(k.blobWrite.buf)) {
			return statusOnly(ctap.StatusInvalidSeq)
		}
		length = k.blobWrite.length
	}
	if k.protected() || k.st.AlwaysUV {
		if r.PinUvAuthParam == nil {
			return statusOnly(ctap.StatusPUATRequired)
		}
		if s := k.checkPinUvParam(r.PinUvAuthProtocol); s != ctap.StatusOK {
			return statusOnly(s)
		}
		if s := k.checkToken(r.PinUvAuthProtocol, r.AuthMessage(), r.PinUvAuthParam,
			tokenCheck{perm: pinuv.PermLargeBlobWrite}); s != ctap.StatusOK {
			return statusOnly(s)
		}
	}
	if r.Offset+uint64(len(r.Set)) > uint64(length) {
		return statusOnly(ctap.StatusInvalidParameter)
	}
	if r.Offset == 0 {
		k.blobWrite = &largeBlobWrite{length: length, buf: make([]byte, 0, length)}
	}
	w := k.blobWrite
	w.buf = append(w.buf, r.Set...)
	if len(w.buf) < w.length {
		return statusOnly(ctap.StatusOK)
	}
	k.blobWrite = nil
	if err := ctap.VerifyLargeBlobArray(w.buf); err != nil {
		return statusOnly(ctap.StatusIntegrityFailure)
	}
	old := k.st.LargeBlobs
	k.st.LargeBlobs = w.buf
	if err := k.save(); err != nil {
		k.st.LargeBlobs = old
		return statusOnly(ctap.StatusOther)
	}
	return statusOnly(ctap.StatusOK)
}
