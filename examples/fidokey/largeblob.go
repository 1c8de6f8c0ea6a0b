package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/fidokit/fidokit/fido"
)

func largeBlobFlags(fs *flag.FlagSet, a *app) {
	fs.StringVar(&a.credentialID, "credential", "", "the credential `ID` whose blob it is (its largeBlobKey is read with credential management, which needs the PIN)")
	fs.StringVar(&a.keyFile, "key-file", "", "read the credential's 32-byte largeBlobKey from `file` (raw, or base64 text) instead of -credential")
}

// checkBlobFlags checks that one of -credential and -key-file is given.
func (a *app) checkBlobFlags(cmd string) error {
	if (a.credentialID == "") == (a.keyFile == "") {
		return usagef(cmd, "%s needs -credential ID or -key-file FILE (one of them)", cmd)
	}
	if a.credentialID != "" {
		if _, err := decodeID(cmd, a.credentialID); err != nil {
			return err
		}
	}
	return nil
}

// blobKey returns the largeBlobKey that -credential or -key-file names, and
// the credential when -credential did.
func (a *app) blobKey(cmd string, k key) ([]byte, *fido.Credential, error) {
	if err := a.checkBlobFlags(cmd); err != nil {
		return nil, nil, err
	}
	if a.keyFile != "" {
		b, err := os.ReadFile(a.keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the largeBlobKey: %w", err)
		}
		if len(b) == 32 {
			return b, nil, nil
		}
		text := strings.TrimSpace(string(b))
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
			if key, err := enc.DecodeString(text); err == nil && len(key) == 32 {
				return key, nil, nil
			}
		}
		return nil, nil, fmt.Errorf("%s holds no 32-byte largeBlobKey (raw, or base64 text)", a.keyFile)
	}
	id, err := decodeID(cmd, a.credentialID)
	if err != nil {
		return nil, nil, err
	}
	cm, err := a.credentialManager(k, cmd)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.findCredential(cm, id)
	if err != nil {
		return nil, nil, err
	}
	if c.LargeBlobKey == nil {
		return nil, nil, fmt.Errorf("the credential of %s has no largeBlobKey: it was made without the largeBlobKey extension", describeCredential(c))
	}
	return c.LargeBlobKey, &c, nil
}

func (a *app) largeBlobStore(k key, what string) (fido.LargeBlobStore, error) {
	s, ok := k.(fido.LargeBlobStore)
	if !ok {
		return nil, fmt.Errorf("%s: not supported by %s", what, a.backendName())
	}
	return s, nil
}

type blobJSON struct {
	Device       deviceJSON `json:"device"`
	CredentialID string     `json:"credentialId"`
	Size         int        `json:"size"`
	Data         *string    `json:"data,omitempty"`
}

var cmdBlobGet = &command{
	name:    "largeblob get",
	summary: "print a credential's large blob (or write it to -o FILE)",
	pin:     true,
	flags: func(fs *flag.FlagSet, a *app) {
		largeBlobFlags(fs, a)
		fs.StringVar(&a.outFile, "o", "", "write the blob to `file` (created with mode 0600) instead of standard output")
	},
	run: func(a *app, args []string) error {
		if err := noArgs("largeblob get", args); err != nil {
			return err
		}
		if err := a.checkBlobFlags("largeblob get"); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			store, err := a.largeBlobStore(k, "largeblob get")
			if err != nil {
				return err
			}
			lbk, c, err := a.blobKey("largeblob get", k)
			if err != nil {
				return err
			}
			data, err := store.ReadLargeBlob(a.ctx, lbk)
			if errors.Is(err, fido.ErrNoLargeBlob) {
				return errors.New("the key holds no large blob for this credential")
			}
			if err != nil {
				return err
			}
			doc := blobJSON{Device: deviceDoc(d), Size: len(data)}
			if c != nil {
				doc.CredentialID = b64(c.ID)
			}
			if a.outFile != "" {
				if err := os.WriteFile(a.outFile, data, 0o600); err != nil {
					return err
				}
			} else if a.json {
				s := base64.StdEncoding.EncodeToString(data)
				doc.Data = &s
			}
			return a.result(doc, func() {
				if a.outFile != "" {
					a.note("Wrote %d bytes to %s.", len(data), a.outFile)
					return
				}
				a.stdout.Write(data)
			})
		})
	},
}

var cmdBlobSet = &command{
	name:    "largeblob set",
	args:    "FILE",
	summary: "store FILE as a credential's large blob, replacing the one it had",
	pin:     true,
	flags:   largeBlobFlags,
	run: func(a *app, args []string) error {
		if len(args) != 1 {
			return usagef("largeblob set", "largeblob set takes one FILE with the data")
		}
		if err := a.checkBlobFlags("largeblob set"); err != nil {
			return err
		}
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			store, err := a.largeBlobStore(k, "largeblob set")
			if err != nil {
				return err
			}
			lbk, c, err := a.blobKey("largeblob set", k)
			if err != nil {
				return err
			}
			if err := store.WriteLargeBlob(a.ctx, lbk, data); err != nil {
				if errors.Is(err, fido.StatusLargeBlobStorageFull) {
					return fmt.Errorf("the key has no room for %d more bytes of large blobs (%v)", len(data), err)
				}
				return err
			}
			doc := blobJSON{Device: deviceDoc(d), Size: len(data)}
			whose := "the credential"
			if c != nil {
				doc.CredentialID = b64(c.ID)
				whose = describeCredential(*c)
			}
			return a.result(doc, func() { a.say("Stored %d bytes as the large blob of %s.", len(data), whose) })
		})
	},
}
