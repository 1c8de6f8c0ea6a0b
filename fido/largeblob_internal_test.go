package fido

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// blobKey is a key that holds a large-blob array as given, good or not,
// and takes writes without checking anything, so that the client's own
// integrity checks are what a test sees.
type blobKey struct {
	mu       sync.Mutex
	array    []byte
	pending  []byte
	overlong bool // answer reads with more than was asked for
}

func (b *blobKey) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ctap.Command(req[0]) {
	case ctap.CmdGetInfo:
		return ctap.EncodeResponse(&ctap.GetInfoResponse{
			Versions: []string{"FIDO_2_1"}, AAGUID: make([]byte, 16), MaxMsgSize: 1024,
			Options:                     map[string]bool{ctap.OptLargeBlobs: true},
			MaxSerializedLargeBlobArray: 4096,
		})
	case ctap.CmdLargeBlobs:
		r, err := ctap.DecodeLargeBlobsRequest(req[1:])
		if err != nil {
			return []byte{byte(ctap.StatusInvalidParameter)}
		}
		if r.Get != nil {
			off := min(int(r.Offset), len(b.array))
			end := min(off+int(*r.Get), len(b.array))
			if b.overlong {
				end = min(off+int(*r.Get)+1, len(b.array))
			}
			return ctap.EncodeResponse(&ctap.LargeBlobsResponse{Config: append([]byte{}, b.array[off:end]...)})
		}
		if r.Offset == 0 {
			b.pending = nil
		}
		b.pending = append(b.pending, r.Set...)
		// Commit after every fragment, unchecked: the last one leaves
		// the whole array.
		b.array = append([]byte{}, b.pending...)
		return []byte{0}
	}
	return []byte{byte(ctap.StatusInvalidCommand)}
}

func (b *blobKey) Msg(ctx context.Context, apdu []byte) []byte { return []byte{0x6D, 0x00} }
func (b *blobKey) Wink()                                       {}

func openBlobKey(t *testing.T, b *blobKey) *Device {
	t.Helper()
	host, dev := hid.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	go (&hid.Server{Handler: b, Capabilities: hid.CapCBOR}).Serve(ctx, dev)
	d, err := (&Opener{}).OpenConn(ctx, host, DeviceInfo{Path: "blob"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); cancel() })
	return d
}

func sealed(t *testing.T, key, data []byte) cbor.RawMessage {
	t.Helper()
	aead, err := largeBlobAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sealLargeBlob(aead, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLargeBlobIntegrity(t *testing.T) {
	ctx := context.Background()
	mine, theirs := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	good := ctap.SerializeLargeBlobArray([]cbor.RawMessage{
		sealed(t, theirs, []byte("theirs")),
		ctap.MustMarshal("not a map"), // an entry no one can read, kept as is
		sealed(t, mine, []byte("mine")),
	})

	t.Run("read", func(t *testing.T) {
		d := openBlobKey(t, &blobKey{array: good})
		b, err := d.ReadLargeBlob(ctx, mine)
		if err != nil || string(b) != "mine" {
			t.Fatalf("ReadLargeBlob = %q, %v", b, err)
		}
		if _, err := d.ReadLargeBlob(ctx, bytes.Repeat([]byte{3}, 32)); !errors.Is(err, ErrNoLargeBlob) {
			t.Errorf("another key: %v, want ErrNoLargeBlob", err)
		}
	})
	t.Run("corrupted", func(t *testing.T) {
		for name, array := range map[string][]byte{
			"flipped byte": func() []byte { a := bytes.Clone(good); a[len(a)/2] ^= 1; return a }(),
			"bad hash":     func() []byte { a := bytes.Clone(good); a[len(a)-1] ^= 1; return a }(),
			"truncated":    good[:len(good)-1],
			"too short":    good[:10],
			"empty":        {},
		} {
			d := openBlobKey(t, &blobKey{array: array})
			_, err := d.ReadLargeBlob(ctx, mine)
			if !errors.Is(err, StatusIntegrityFailure) || errors.Is(err, ErrNoLargeBlob) {
				t.Errorf("%s: ReadLargeBlob = %v, want StatusIntegrityFailure", name, err)
			}
		}
	})
	t.Run("write keeps others' entries", func(t *testing.T) {
		k := &blobKey{array: good}
		d := openBlobKey(t, k)
		if err := d.WriteLargeBlob(ctx, mine, []byte("mine, again")); err != nil {
			t.Fatal(err)
		}
		entries, err := ctap.DecodeLargeBlobArray(k.array)
		if err != nil {
			t.Fatalf("the array written does not verify: %v", err)
		}
		if len(entries) != 3 {
			t.Fatalf("%d entries, want 3", len(entries))
		}
		old, _ := ctap.DecodeLargeBlobArray(good)
		if !bytes.Equal(entries[0], old[0]) || !bytes.Equal(entries[1], old[1]) {
			t.Error("other entries changed")
		}
		if b, err := d.ReadLargeBlob(ctx, mine); err != nil || string(b) != "mine, again" {
			t.Errorf("read back %q, %v", b, err)
		}
		if b, err := d.ReadLargeBlob(ctx, theirs); err != nil || string(b) != "theirs" {
			t.Errorf("the other credential's blob: %q, %v", b, err)
		}
	})
	t.Run("write over a corrupted array", func(t *testing.T) {
		bad := bytes.Clone(good)
		bad[len(bad)-1] ^= 1
		k := &blobKey{array: bad}
		d := openBlobKey(t, k)
		if err := d.WriteLargeBlob(ctx, mine, []byte("fresh")); err != nil {
			t.Fatal(err)
		}
		entries, err := ctap.DecodeLargeBlobArray(k.array)
		if err != nil || len(entries) != 1 {
			t.Fatalf("after writing over a corrupted array: %d entries, %v; want the initial array plus one", len(entries), err)
		}
		if b, err := d.ReadLargeBlob(ctx, mine); err != nil || string(b) != "fresh" {
			t.Errorf("read back %q, %v", b, err)
		}
	})
	t.Run("overlong fragment", func(t *testing.T) {
		big := ctap.SerializeLargeBlobArray([]cbor.RawMessage{sealed(t, mine, []byte("x")), ctap.MustMarshal(make([]byte, 2000))})
		d := openBlobKey(t, &blobKey{array: big, overlong: true})
		if _, err := d.ReadLargeBlob(ctx, mine); !errors.Is(err, ErrInvalidResponse) {
			t.Errorf("a key sending more than asked: %v, want ErrInvalidResponse", err)
		}
	})
}

// TestOpenLargeBlobBounds checks entries that lie about their size are
// skipped rather than inflated without bound.
func TestOpenLargeBlobBounds(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	aead, _ := largeBlobAEAD(key)
	e := sealed(t, key, bytes.Repeat([]byte{0}, 1000))
	b, err := ctap.DecodeLargeBlob(e)
	if err != nil {
		t.Fatal(err)
	}
	if data, ok := openLargeBlob(aead, e); !ok || len(data) != 1000 {
		t.Fatalf("openLargeBlob = %d bytes, %v", len(data), ok)
	}
	// The same ciphertext claiming another size fails authentication,
	// since the size is associated data.
	b.OrigSize = 10
	if _, ok := openLargeBlob(aead, ctap.MustMarshal(b)); ok {
		t.Error("an entry with a false origSize opened")
	}
	b.OrigSize = maxLargeBlobSize + 1
	if _, ok := openLargeBlob(aead, ctap.MustMarshal(b)); ok {
		t.Error("an entry claiming an absurd size opened")
	}
}
