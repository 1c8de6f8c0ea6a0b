package fido_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

func TestLargeBlobs(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			// A small maxMsgSize and a large store, so that writing and
			// reading need several fragments.
			k := newKey(t, &virtual.Config{PIN: testPIN, MaxMsgSize: 1024, MaxSerializedLargeBlobArray: 8192})
			prompt := &pinPrompt{always: testPIN}
			d := v.open(t, k, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			creds := enrollAll(t, d, [2]string{"example.com", "alice"}, [2]string{"example.com", "bob"})
			k1, k2 := creds[0].att.Extensions.LargeBlobKey, creds[1].att.Extensions.LargeBlobKey

			prompt.script()
			if _, err := d.ReadLargeBlob(ctx, k1); !errors.Is(err, fido.ErrNoLargeBlob) {
				t.Errorf("ReadLargeBlob on an empty store = %v, want ErrNoLargeBlob", err)
			}
			if n := len(prompt.requests()); n != 0 {
				t.Errorf("reading asked for the PIN %d times", n)
			}
			if err := d.WriteLargeBlob(ctx, k1, []byte("alice's blob")); err != nil {
				t.Fatal(err)
			}
			if r := prompt.requests(); len(r) != 1 || r[0].Op != "largeBlobs" {
				t.Errorf("PIN requests %+v, want one for largeBlobs", r)
			}
			// Incompressible, so that the array spans fragments.
			big := make([]byte, 3000)
			rand.Read(big)
			if err := d.WriteLargeBlob(ctx, k2, big); err != nil {
				t.Fatal(err)
			}
			read := func(key []byte) []byte {
				t.Helper()
				b, err := d.ReadLargeBlob(ctx, key)
				if err != nil {
					t.Fatalf("ReadLargeBlob: %v", err)
				}
				return b
			}
			if got := read(k1); string(got) != "alice's blob" {
				t.Errorf("alice's blob = %q", got)
			}
			if got := read(k2); !bytes.Equal(got, big) {
				t.Error("bob's blob did not come back whole")
			}
			// Replace one; the other stays.
			if err := d.WriteLargeBlob(ctx, k1, bytes.Repeat([]byte("compressible "), 500)); err != nil {
				t.Fatal(err)
			}
			if got := read(k1); !bytes.Equal(got, bytes.Repeat([]byte("compressible "), 500)) {
				t.Error("replaced blob wrong")
			}
			if got := read(k2); !bytes.Equal(got, big) {
				t.Error("replacing alice's blob changed bob's")
			}
			// Remove one.
			if err := d.WriteLargeBlob(ctx, k1, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := d.ReadLargeBlob(ctx, k1); !errors.Is(err, fido.ErrNoLargeBlob) {
				t.Errorf("after removal: %v, want ErrNoLargeBlob", err)
			}
			if got := read(k2); !bytes.Equal(got, big) {
				t.Error("removing alice's blob changed bob's")
			}
			// Too large for the key.
			huge := make([]byte, 9000)
			rand.Read(huge)
			if err := d.WriteLargeBlob(ctx, k1, huge); !errors.Is(err, fido.StatusLargeBlobStorageFull) {
				t.Errorf("writing past the key's room = %v, want StatusLargeBlobStorageFull", err)
			}
			if got := read(k2); !bytes.Equal(got, big) {
				t.Error("a refused write changed the store")
			}
			for name, key := range map[string][]byte{"short": k1[:31], "none": nil} {
				if _, err := d.ReadLargeBlob(ctx, key); !errors.Is(err, fido.ErrInvalidRequest) {
					t.Errorf("%s key: %v, want ErrInvalidRequest", name, err)
				}
			}
		})
	}
	t.Run("no PIN", func(t *testing.T) {
		k := newKey(t, &virtual.Config{})
		prompt := &pinPrompt{}
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
		ctx := ctxT(t)
		key := enrollAll(t, d, [2]string{"example.com", "alice"})[0].att.Extensions.LargeBlobKey
		if err := d.WriteLargeBlob(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if b, err := d.ReadLargeBlob(ctx, key); err != nil || string(b) != "x" {
			t.Errorf("ReadLargeBlob = %q, %v", b, err)
		}
		if n := len(prompt.requests()); n != 0 {
			t.Errorf("%d PIN prompts on a key without a PIN", n)
		}
	})
	t.Run("PIN declined", func(t *testing.T) {
		k := newKey(t, &virtual.Config{PIN: testPIN})
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
		key := enrollAll(t, d, [2]string{"example.com", "alice"})[0].att.Extensions.LargeBlobKey
		d2 := openWithPrompt(t, k, false, fido.Prompt{})
		if err := d2.WriteLargeBlob(ctxT(t), key, []byte("x")); !errors.Is(err, fido.ErrPINRequired) {
			t.Errorf("WriteLargeBlob without a PIN callback = %v, want ErrPINRequired", err)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		d := openWithPrompt(t, newKey(t, &virtual.Config{NoLargeBlobs: true}), false, fido.Prompt{})
		if _, err := d.ReadLargeBlob(ctxT(t), make([]byte, 32)); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("ReadLargeBlob = %v, want ErrNotSupported", err)
		}
	})
}
