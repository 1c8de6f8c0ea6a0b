package virtual

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"

	"github.com/fidokit/fidokit/internal/ctap"
)

// blobWrite writes a serialized array in fragments of n bytes, each
// signed with tok (nil: unsigned), and returns the status of the first
// failing fragment or of the last.
func blobWrite(t testing.TB, k *Key, v uint64, tok, arr []byte, n int) ctap.Status {
	t.Helper()
	for off := 0; off < len(arr); off += n {
		r := &ctap.LargeBlobsRequest{Set: arr[off:min(off+n, len(arr))], Offset: uint64(off)}
		if off == 0 {
			r.Length = uint64(len(arr))
		}
		if tok != nil {
			r.PinUvAuthProtocol, r.PinUvAuthParam = v, authenticate(v, tok, r.AuthMessage())
		}
		if s, body := do(t, k, ctap.CmdLargeBlobs, r); s != ctap.StatusOK || len(body) != 0 {
			return s
		}
	}
	return ctap.StatusOK
}

// blobRead reads the whole array n bytes at a time.
func blobRead(t testing.TB, k *Key, n int) []byte {
	t.Helper()
	var arr []byte
	for {
		get := uint64(n)
		s, body := do(t, k, ctap.CmdLargeBlobs, &ctap.LargeBlobsRequest{Get: &get, Offset: uint64(len(arr))})
		if s != ctap.StatusOK {
			t.Fatalf("reading at %d: %v", len(arr), s)
		}
		r, err := ctap.DecodeLargeBlobsResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		arr = append(arr, r.Config...)
		if len(r.Config) < n {
			return arr
		}
	}
}

// sealBlob makes a large-blob map for data under key as CTAP 2.1 §6.10.3
// says, with the standard library: DEFLATE, then AES-256-GCM with the
// associated data "blob" || uint64LE(origSize).
func sealBlob(t testing.TB, key, data []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(data)
	w.Close()
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	ad := binary.LittleEndian.AppendUint64([]byte("blob"), uint64(len(data)))
	return ctap.MustMarshal(map[int]any{1: gcm.Seal(nil, nonce, z.Bytes(), ad), 2: nonce, 3: len(data)})
}

func openBlob(t testing.TB, key, entry []byte) []byte {
	t.Helper()
	b, err := ctap.DecodeLargeBlob(entry)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	ad := binary.LittleEndian.AppendUint64([]byte("blob"), b.OrigSize)
	z, err := gcm.Open(nil, b.Nonce, b.Ciphertext, ad)
	if err != nil {
		t.Fatalf("opening the blob: %v", err)
	}
	data, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// serialize is the array of entries followed by LEFT(SHA-256(array), 16).
func serialize(entries ...[]byte) []byte {
	arr := []byte{0x80 | byte(len(entries))}
	for _, e := range entries {
		arr = append(arr, e...)
	}
	h := sha256.Sum256(arr)
	return append(arr, h[:16]...)
}

// TestLargeBlobs writes a large blob for a credential in fragments with
// a token, reads it back, and checks that a corrupt array is refused.
func TestLargeBlobs(t *testing.T) {
	for _, v := range protocols {
		t.Run(protoName(v), func(t *testing.T) {
			// maxMsgSize 300 makes fragments of at most 236 bytes.
			k := newTestKey(t, &Config{PIN: "1234", MaxMsgSize: 300})
			if got, want := blobRead(t, k, 236), []byte{0x80, 0x76, 0xbe, 0x8b, 0x52, 0x8d, 0x00, 0x75, 0xf7, 0xaa, 0xe9, 0x8d, 0x6f, 0xa5, 0x7a, 0x6d, 0x3c}; !bytes.Equal(got, want) {
				t.Fatalf("initial array %x", got)
			}
			// One token with mc and lbw: the makeCredential leaves lbw.
			tok := pinToken(t, k, v, "1234", 0x11, testRPID)
			resp, _ := makeCredential(t, k, withToken(v, tok, withExt(mcRequest("a", true), "largeBlobKey", true)))
			data := make([]byte, 700)
			rand.Read(data) // incompressible, so the array needs fragments
			arr := serialize(sealBlob(t, resp.LargeBlobKey, data))
			if s := blobWrite(t, k, v, tok, arr, 236); s != ctap.StatusOK {
				t.Fatalf("writing %d bytes: %v", len(arr), s)
			}
			got := blobRead(t, k, 100)
			if !bytes.Equal(got, arr) {
				t.Fatal("read back a different array")
			}
			entries, err := ctap.DecodeLargeBlobArray(got)
			if err != nil || len(entries) != 1 {
				t.Fatalf("array: %v", err)
			}
			if !bytes.Equal(openBlob(t, resp.LargeBlobKey, entries[0]), data) {
				t.Error("blob round trip changed the data")
			}

			bad := bytes.Clone(arr)
			bad[len(bad)-1] ^= 1
			before := snapshot(t, k)
			if s := blobWrite(t, k, v, tok, bad, 236); s != ctap.StatusIntegrityFailure {
				t.Errorf("corrupt array: %v", s)
			}
			checkUnchanged(t, k, before, "INTEGRITY_FAILURE")
			if !bytes.Equal(blobRead(t, k, 236), arr) {
				t.Error("a refused write changed the array")
			}
		})
	}
}

func TestLargeBlobsRejects(t *testing.T) {
	k := newTestKey(t, &Config{PIN: "1234", MaxMsgSize: 300})
	tok := pinToken(t, k, 2, "1234", 0x10, "")
	arr := serialize()
	sign := func(r *ctap.LargeBlobsRequest) *ctap.LargeBlobsRequest {
		r.PinUvAuthProtocol, r.PinUvAuthParam = 2, authenticate(2, tok, r.AuthMessage())
		return r
	}
	get := func(n uint64) *uint64 { return &n }
	for _, tt := range []struct {
		name string
		req  *ctap.LargeBlobsRequest
		want ctap.Status
	}{
		{"read over maxFragmentLength", &ctap.LargeBlobsRequest{Get: get(237)}, ctap.StatusInvalidLength},
		{"read past the end", &ctap.LargeBlobsRequest{Get: get(10), Offset: 18}, ctap.StatusInvalidParameter},
		{"write over maxFragmentLength", sign(&ctap.LargeBlobsRequest{Set: make([]byte, 237), Length: 1000}), ctap.StatusInvalidLength},
		{"array over maxSerializedLargeBlobArray", sign(&ctap.LargeBlobsRequest{Set: arr, Length: 1025}), ctap.StatusLargeBlobStorageFull},
		{"array under 17 bytes", sign(&ctap.LargeBlobsRequest{Set: arr[:16], Length: 16}), ctap.StatusInvalidParameter},
		{"the empty array", sign(&ctap.LargeBlobsRequest{Set: arr, Length: 17}), ctap.StatusOK},
		{"continuation without a start", sign(&ctap.LargeBlobsRequest{Set: arr, Offset: 17}), ctap.StatusInvalidSeq},
		{"without a token", &ctap.LargeBlobsRequest{Set: arr, Length: 17}, ctap.StatusPUATRequired},
		{"without protocol", &ctap.LargeBlobsRequest{Set: arr, Length: 17, PinUvAuthParam: make([]byte, 32)}, ctap.StatusMissingParameter},
		{"bad pinUvAuthParam", &ctap.LargeBlobsRequest{Set: arr, Length: 17, PinUvAuthParam: make([]byte, 32), PinUvAuthProtocol: 2}, ctap.StatusPINAuthInvalid},
		{"longer than announced", sign(&ctap.LargeBlobsRequest{Set: append(bytes.Clone(arr), 0), Length: 17}), ctap.StatusInvalidParameter},
		{"neither get nor set", &ctap.LargeBlobsRequest{}, ctap.StatusInvalidParameter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, _ := do(t, k, ctap.CmdLargeBlobs, tt.req); s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
		})
	}
	t.Run("out of sequence", func(t *testing.T) {
		big := serialize(bytes.Repeat([]byte{0x01}, 300))
		if s, _ := do(t, k, ctap.CmdLargeBlobs, sign(&ctap.LargeBlobsRequest{Set: big[:200], Length: uint64(len(big))})); s != ctap.StatusOK {
			t.Fatal(s)
		}
		if s, _ := do(t, k, ctap.CmdLargeBlobs, sign(&ctap.LargeBlobsRequest{Set: big[100:200], Offset: 100})); s != ctap.StatusInvalidSeq {
			t.Errorf("status %v", s)
		}
	})
	t.Run("token without lbw", func(t *testing.T) {
		tok := pinToken(t, k, 2, "1234", 0x01, "")
		r := &ctap.LargeBlobsRequest{Set: arr, Length: 17, PinUvAuthProtocol: 2}
		r.PinUvAuthParam = authenticate(2, tok, r.AuthMessage())
		if s, _ := do(t, k, ctap.CmdLargeBlobs, r); s != ctap.StatusPINAuthInvalid {
			t.Errorf("status %v", s)
		}
	})
	t.Run("unprotected key writes freely", func(t *testing.T) {
		k := newTestKey(t, nil)
		if s := blobWrite(t, k, 2, nil, serialize([]byte{0xa0}), 100); s != ctap.StatusOK {
			t.Errorf("status %v", s)
		}
	})
	t.Run("no large blobs", func(t *testing.T) {
		for _, cfg := range []*Config{{NoLargeBlobs: true}, {CTAPVersion: CTAP20}} {
			k := newTestKey(t, cfg)
			if s, _ := do(t, k, ctap.CmdLargeBlobs, &ctap.LargeBlobsRequest{Get: get(10)}); s != ctap.StatusInvalidCommand {
				t.Errorf("status %v", s)
			}
		}
	})
}
