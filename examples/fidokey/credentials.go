package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fidokit/fidokit/fido"
)

// credentialJSON is a discoverable credential in documents.
type credentialJSON struct {
	ID              string `json:"id"`
	RPID            string `json:"rpId"`
	RPName          string `json:"rpName"`
	UserID          string `json:"userId"`
	UserName        string `json:"userName"`
	UserDisplayName string `json:"userDisplayName"`
	Algorithm       string `json:"algorithm"`
	CredProtect     string `json:"credProtect,omitempty"`
	LargeBlobKey    bool   `json:"largeBlobKey"`
}

func credentialDoc(c fido.Credential) credentialJSON {
	doc := credentialJSON{
		ID:              b64(c.ID),
		RPID:            c.RP.ID,
		RPName:          c.RP.Name,
		UserID:          b64(c.User.ID),
		UserName:        c.User.Name,
		UserDisplayName: c.User.DisplayName,
		LargeBlobKey:    c.LargeBlobKey != nil,
	}
	if c.Algorithm != 0 {
		doc.Algorithm = c.Algorithm.String()
	}
	if c.CredProtect != 0 {
		doc.CredProtect = c.CredProtect.String()
	}
	return doc
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeID reads a credential ID as printed (base64url), also taking
// padding and standard base64.
func decodeID(cmd, s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, usagef(cmd, "credential ID %q is not base64url, as 'fidokey credentials list' prints it", s)
}

// credentialManager returns the key's credential management, or says the
// backend has none.
func (a *app) credentialManager(k key, what string) (fido.CredentialManager, error) {
	cm, ok := k.(fido.CredentialManager)
	if !ok {
		return nil, fmt.Errorf("%s: not supported by %s", what, a.backendName())
	}
	return cm, nil
}

// credentials lists the key's discoverable credentials, for one relying
// party or for all. fido.CredentialManager asks for a pinUvAuthToken per
// call; promptPIN asks the person once and reuses the PIN.
func (a *app) credentials(cm fido.CredentialManager, rpID string) ([]fido.Credential, error) {
	rps := []fido.RelyingParty{{ID: rpID}}
	if rpID == "" {
		var err error
		if rps, err = cm.RelyingParties(a.ctx); err != nil {
			return nil, err
		}
	}
	var out []fido.Credential
	for _, rp := range rps {
		creds, err := cm.Credentials(a.ctx, rp.ID)
		if err != nil {
			return nil, err
		}
		for _, c := range creds {
			if c.RP.Name == "" {
				c.RP.Name = rp.Name
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// findCredential returns the credential with the given ID.
func (a *app) findCredential(cm fido.CredentialManager, id []byte) (fido.Credential, error) {
	creds, err := a.credentials(cm, "")
	if err != nil {
		return fido.Credential{}, err
	}
	for _, c := range creds {
		if bytes.Equal(c.ID, id) {
			return c, nil
		}
	}
	return fido.Credential{}, fmt.Errorf("the key holds no discoverable credential with ID %s (see 'fidokey credentials list')", b64(id))
}

func describeCredential(c fido.Credential) string {
	user := c.User.Name
	if user == "" {
		user = "user " + b64(c.User.ID)
	}
	return fmt.Sprintf("%s on %s", user, c.RP.ID)
}

var cmdCredList = &command{
	name:    "credentials list",
	summary: "list the discoverable credentials (passkeys) on the key",
	pin:     true,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.StringVar(&a.flagRP, "rp", "", "only the credentials of the relying party `id`")
	},
	run: func(a *app, args []string) error {
		if err := noArgs("credentials list", args); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			cm, err := a.credentialManager(k, "credentials list")
			if err != nil {
				return err
			}
			meta, err := cm.CredentialsMetadata(a.ctx)
			if err != nil {
				return err
			}
			creds, err := a.credentials(cm, a.flagRP)
			if err != nil {
				return err
			}
			doc := struct {
				Device      deviceJSON       `json:"device"`
				Existing    int              `json:"existing"`
				Remaining   int              `json:"remaining"`
				Credentials []credentialJSON `json:"credentials"`
			}{Device: deviceDoc(d), Existing: meta.Existing, Remaining: meta.Remaining, Credentials: []credentialJSON{}}
			for _, c := range creds {
				doc.Credentials = append(doc.Credentials, credentialDoc(c))
			}
			return a.result(doc, func() {
				if len(creds) > 0 {
					w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintln(w, "RP ID\tUSER\tDISPLAY NAME\tCREDENTIAL ID")
					for _, c := range doc.Credentials {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.RPID, orDash(c.UserName), orDash(c.UserDisplayName), c.ID)
					}
					w.Flush()
				}
				a.say("%s on the key, room for %d more.", plural(meta.Existing, "discoverable credential"), meta.Remaining)
			})
		})
	},
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

var cmdCredDelete = &command{
	name:    "credentials delete",
	args:    "ID",
	summary: "delete a discoverable credential from the key",
	pin:     true,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.BoolVar(&a.force, "force", false, "do not ask for confirmation")
	},
	run: func(a *app, args []string) error {
		if len(args) != 1 {
			return usagef("credentials delete", "credentials delete takes one credential ID")
		}
		id, err := decodeID("credentials delete", args[0])
		if err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			cm, err := a.credentialManager(k, "credentials delete")
			if err != nil {
				return err
			}
			c, err := a.findCredential(cm, id)
			if err != nil {
				return err
			}
			if !a.force {
				if err := a.confirm(fmt.Sprintf("Delete the credential of %s from %s? That account can no longer sign in with this key, and there is no undo.", describeCredential(c), d.Path)); err != nil {
					return fmt.Errorf("credential not deleted: %w", err)
				}
			}
			if err := cm.DeleteCredential(a.ctx, id); err != nil {
				return err
			}
			doc := struct {
				Device  deviceJSON     `json:"device"`
				Deleted credentialJSON `json:"deleted"`
			}{deviceDoc(d), credentialDoc(c)}
			return a.result(doc, func() { a.say("Deleted the credential of %s.", describeCredential(c)) })
		})
	},
}

// optString is a string flag that knows whether it was given.
type optString struct {
	value string
	set   bool
}

func (o *optString) String() string     { return o.value }
func (o *optString) Set(s string) error { o.value, o.set = s, true; return nil }

var cmdCredRename = &command{
	name:    "credentials rename-user",
	args:    "ID",
	summary: "change the user name or display name stored with a credential",
	pin:     true,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.Var(&a.flagName, "name", "the new user `name`, such as an email address")
		fs.Var(&a.flagDisplayName, "display-name", "the new display `name`")
	},
	run: func(a *app, args []string) error {
		if len(args) != 1 {
			return usagef("credentials rename-user", "credentials rename-user takes one credential ID")
		}
		if !a.flagName.set && !a.flagDisplayName.set {
			return usagef("credentials rename-user", "credentials rename-user needs -name, -display-name or both")
		}
		id, err := decodeID("credentials rename-user", args[0])
		if err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			cm, err := a.credentialManager(k, "credentials rename-user")
			if err != nil {
				return err
			}
			c, err := a.findCredential(cm, id)
			if err != nil {
				return err
			}
			before := describeCredential(c)
			if a.flagName.set {
				c.User.Name = a.flagName.value
			}
			if a.flagDisplayName.set {
				c.User.DisplayName = a.flagDisplayName.value
			}
			if err := cm.UpdateUser(a.ctx, id, c.User); err != nil {
				return a.unsupported("credentials rename-user", err)
			}
			doc := struct {
				Device     deviceJSON     `json:"device"`
				Credential credentialJSON `json:"credential"`
			}{deviceDoc(d), credentialDoc(c)}
			return a.result(doc, func() {
				a.say("Renamed %s: now %s (display name %q).", before, strings.TrimSuffix(describeCredential(c), " on "+c.RP.ID), c.User.DisplayName)
			})
		})
	},
}
