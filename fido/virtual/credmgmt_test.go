package virtual

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
)

// credMgmt sends one credential management request signed with tok
// (nil: unsigned) under protocol v.
func credMgmt(t testing.TB, k *Key, c ctap.Command, v uint64, tok []byte, sub ctap.CredMgmtSubCommand, p *ctap.CredMgmtParams) (ctap.Status, *ctap.CredMgmtResponse) {
	t.Helper()
	r := &ctap.CredMgmtRequest{SubCommand: sub}
	r.SetParams(p)
	if tok != nil {
		r.PinUvAuthProtocol, r.PinUvAuthParam = v, authenticate(v, tok, r.AuthMessage())
	}
	s, body := do(t, k, c, r)
	if s != ctap.StatusOK || len(body) == 0 {
		return s, nil
	}
	resp, err := ctap.DecodeCredMgmtResponse(body)
	if err != nil {
		t.Fatalf("%v response: %v", sub, err)
	}
	return s, resp
}

// enrolled makes a key with a PIN and discoverable credentials on three
// RPs: alice and bob on a.example, carol on b.example, dave on c.example.
func enrolled(t *testing.T, cfg *Config) (*Key, map[string][]byte) {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.PIN = "1234"
	k := newTestKey(t, cfg)
	v := uint64(2)
	if cfg.CTAPVersion == CTAP20 {
		v = 1
	}
	ids := map[string][]byte{}
	for _, u := range []struct{ user, rp string }{{"alice", "a.example"}, {"bob", "a.example"}, {"carol", "b.example"}, {"dave", "c.example"}} {
		r := mcRequest(u.user, true)
		r.RP = &ctap.RPEntity{ID: u.rp, Name: "RP " + u.rp}
		r.Extensions = map[string]cbor.RawMessage{"credProtect": ctap.MustMarshal(2)}
		perms := uint64(0x01)
		if v == 1 && cfg.CTAPVersion == CTAP20 {
			perms = 0
		}
		_, ad := makeCredential(t, k, withToken(v, pinToken(t, k, v, "1234", perms, ""), r))
		ids[u.user] = ad.Attested.CredentialID
	}
	return k, ids
}

// TestCredentialManagement enumerates, updates and deletes credentials
// across several RPs.
func TestCredentialManagement(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *Config
		c    ctap.Command
		v    uint64
	}{
		{"CTAP 2.1", nil, ctap.CmdCredentialManagement, 2},
		{"CTAP 2.1 protocol one", nil, ctap.CmdCredentialManagement, 1},
		{"CTAP 2.0 preview", &Config{CTAPVersion: CTAP20}, ctap.CmdCredentialManagementPreview, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k, ids := enrolled(t, tt.cfg)
			perms := uint64(0x04)
			if tt.c == ctap.CmdCredentialManagementPreview {
				perms = 0 // getPinToken, the only kind a 2.0 key has
			}
			tok := pinToken(t, k, tt.v, "1234", perms, "")
			cm := func(sub ctap.CredMgmtSubCommand, p *ctap.CredMgmtParams) (ctap.Status, *ctap.CredMgmtResponse) {
				t.Helper()
				return credMgmt(t, k, tt.c, tt.v, tok, sub, p)
			}
			next := func(sub ctap.CredMgmtSubCommand) (ctap.Status, *ctap.CredMgmtResponse) {
				t.Helper()
				return credMgmt(t, k, tt.c, tt.v, nil, sub, nil)
			}

			s, meta := cm(ctap.CredMgmtGetCredsMetadata, nil)
			if s != ctap.StatusOK || *meta.ExistingResidentCredentialsCount != 4 || *meta.MaxPossibleRemainingResidentCredentialsCount != 21 {
				t.Fatalf("getCredsMetadata: %v %+v", s, meta)
			}

			s, rp := cm(ctap.CredMgmtEnumerateRPsBegin, nil)
			if s != ctap.StatusOK || rp.TotalRPs != 3 {
				t.Fatalf("enumerateRPsBegin: %v %+v", s, rp)
			}
			rps := []string{rp.RP.ID}
			for range 2 {
				s, rp := next(ctap.CredMgmtEnumerateRPsGetNextRP)
				if s != ctap.StatusOK {
					t.Fatalf("enumerateRPsGetNextRP: %v", s)
				}
				if h := sha256.Sum256([]byte(rp.RP.ID)); !bytes.Equal(rp.RPIDHash, h[:]) || rp.RP.Name != "RP "+rp.RP.ID {
					t.Errorf("RP %+v", rp)
				}
				rps = append(rps, rp.RP.ID)
			}
			if !slices.Equal(rps, []string{"a.example", "b.example", "c.example"}) {
				t.Errorf("RPs %v", rps)
			}
			if s, _ := next(ctap.CredMgmtEnumerateRPsGetNextRP); s != ctap.StatusNotAllowed {
				t.Errorf("past the last RP: %v", s)
			}

			hashA := sha256.Sum256([]byte("a.example"))
			s, cred := cm(ctap.CredMgmtEnumerateCredentialsBegin, &ctap.CredMgmtParams{RPIDHash: hashA[:]})
			if s != ctap.StatusOK || cred.TotalCredentials != 2 {
				t.Fatalf("enumerateCredentialsBegin: %v %+v", s, cred)
			}
			users := []string{string(cred.User.ID)}
			if cred.CredProtect != 2 || cred.User.Name != "alice@example.com" || !bytes.Equal(cred.CredentialID.ID, ids["alice"]) {
				t.Errorf("credential %+v", cred)
			}
			if _, _, err := ctap.ParsePublicKey(cred.PublicKey); err != nil {
				t.Errorf("public key: %v", err)
			}
			s, cred = next(ctap.CredMgmtEnumerateCredentialsGetNextCredential)
			if s != ctap.StatusOK {
				t.Fatal(s)
			}
			users = append(users, string(cred.User.ID))
			if !slices.Equal(users, []string{"alice", "bob"}) {
				t.Errorf("users %v", users)
			}
			if s, _ := next(ctap.CredMgmtEnumerateCredentialsGetNextCredential); s != ctap.StatusNotAllowed {
				t.Errorf("past the last credential: %v", s)
			}
			none := sha256.Sum256([]byte("none.example"))
			if s, _ := cm(ctap.CredMgmtEnumerateCredentialsBegin, &ctap.CredMgmtParams{RPIDHash: none[:]}); s != ctap.StatusNoCredentials {
				t.Errorf("RP without credentials: %v", s)
			}

			// Another command ends an enumeration.
			cm(ctap.CredMgmtEnumerateRPsBegin, nil)
			do(t, k, ctap.CmdGetInfo, nil)
			if s, _ := next(ctap.CredMgmtEnumerateRPsGetNextRP); s != ctap.StatusNotAllowed {
				t.Errorf("getNextRP after getInfo: %v", s)
			}

			bob := &ctap.CredentialDescriptor{Type: "public-key", ID: ids["bob"]}
			if s, _ := cm(ctap.CredMgmtUpdateUserInformation, &ctap.CredMgmtParams{CredentialID: bob,
				User: &ctap.UserEntity{ID: []byte("bob"), Name: "robert", DisplayName: "Robert"}}); s != ctap.StatusOK {
				t.Fatalf("updateUserInformation: %v", s)
			}
			if s, _ := cm(ctap.CredMgmtUpdateUserInformation, &ctap.CredMgmtParams{CredentialID: bob,
				User: &ctap.UserEntity{ID: []byte("eve"), Name: "eve"}}); s != ctap.StatusInvalidParameter {
				t.Errorf("updateUserInformation with another user ID: %v", s)
			}
			for _, user := range []string{"alice", "carol"} {
				if s, _ := cm(ctap.CredMgmtDeleteCredential, &ctap.CredMgmtParams{
					CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: ids[user]}}); s != ctap.StatusOK {
					t.Fatalf("deleteCredential %s: %v", user, s)
				}
			}
			if s, _ := cm(ctap.CredMgmtDeleteCredential, &ctap.CredMgmtParams{
				CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: ids["alice"]}}); s != ctap.StatusNoCredentials {
				t.Errorf("deleting twice: %v", s)
			}
			var got []string
			for _, c := range k.Credentials() {
				got = append(got, c.UserName)
			}
			if !slices.Equal(got, []string{"robert", "dave@example.com"}) {
				t.Errorf("credentials left: %v", got)
			}
			s, rp = cm(ctap.CredMgmtEnumerateRPsBegin, nil)
			if s != ctap.StatusOK || rp.TotalRPs != 2 {
				t.Errorf("RPs after deleting: %v %+v", s, rp)
			}
		})
	}
}

// TestCredentialManagementAuth: credential management needs a token with
// cm, and an RP-bound one only works for its RP.
func TestCredentialManagementAuth(t *testing.T) {
	k, ids := enrolled(t, nil)
	hashA := sha256.Sum256([]byte("a.example"))
	hashB := sha256.Sum256([]byte("b.example"))
	carol := &ctap.CredMgmtParams{CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: ids["carol"]}}
	tests := []struct {
		name  string
		perms uint64
		rpID  string
		sub   ctap.CredMgmtSubCommand
		p     *ctap.CredMgmtParams
		want  ctap.Status
	}{
		{"mc token refused", 0x01, "", ctap.CredMgmtGetCredsMetadata, nil, ctap.StatusPINAuthInvalid},
		{"mc|ga token refused", 0x03, "", ctap.CredMgmtEnumerateRPsBegin, nil, ctap.StatusPINAuthInvalid},
		{"bound cm token for metadata", 0x04, "a.example", ctap.CredMgmtGetCredsMetadata, nil, ctap.StatusPINAuthInvalid},
		{"bound cm token for its RP", 0x04, "a.example", ctap.CredMgmtEnumerateCredentialsBegin, &ctap.CredMgmtParams{RPIDHash: hashA[:]}, ctap.StatusOK},
		{"bound cm token for another RP", 0x04, "a.example", ctap.CredMgmtEnumerateCredentialsBegin, &ctap.CredMgmtParams{RPIDHash: hashB[:]}, ctap.StatusPINAuthInvalid},
		{"bound cm token deleting another RP's", 0x04, "a.example", ctap.CredMgmtDeleteCredential, carol, ctap.StatusPINAuthInvalid},
		{"unknown subcommand", 0x04, "", 0x09, nil, ctap.StatusInvalidSubcommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := pinToken(t, k, 2, "1234", tt.perms, tt.rpID)
			before := snapshot(t, k)
			if s, _ := credMgmt(t, k, ctap.CmdCredentialManagement, 2, tok, tt.sub, tt.p); s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
			checkUnchanged(t, k, before, "credential management")
		})
	}
	tok := pinToken(t, k, 2, "1234", 0x04, "")
	t.Run("no pinUvAuthParam", func(t *testing.T) {
		if s, _ := credMgmt(t, k, ctap.CmdCredentialManagement, 2, nil, ctap.CredMgmtGetCredsMetadata, nil); s != ctap.StatusPUATRequired {
			t.Errorf("status %v", s)
		}
	})
	t.Run("params not covered by the signature", func(t *testing.T) {
		r := &ctap.CredMgmtRequest{SubCommand: ctap.CredMgmtDeleteCredential}
		r.SetParams(&ctap.CredMgmtParams{CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: ids["dave"]}})
		r.PinUvAuthProtocol, r.PinUvAuthParam = 2, authenticate(2, tok, []byte{byte(r.SubCommand)})
		if s, _ := do(t, k, ctap.CmdCredentialManagement, r); s != ctap.StatusPINAuthInvalid {
			t.Errorf("status %v", s)
		}
	})
	t.Run("no protocol", func(t *testing.T) {
		r := &ctap.CredMgmtRequest{SubCommand: ctap.CredMgmtGetCredsMetadata, PinUvAuthParam: make([]byte, 32)}
		if s, _ := do(t, k, ctap.CmdCredentialManagement, r); s != ctap.StatusMissingParameter {
			t.Errorf("status %v", s)
		}
	})
	t.Run("missing rpIDHash", func(t *testing.T) {
		if s, _ := credMgmt(t, k, ctap.CmdCredentialManagement, 2, tok, ctap.CredMgmtEnumerateCredentialsBegin, nil); s != ctap.StatusMissingParameter {
			t.Errorf("status %v", s)
		}
	})
	t.Run("the token outlives its uses", func(t *testing.T) {
		for range 3 {
			if s, _ := credMgmt(t, k, ctap.CmdCredentialManagement, 2, tok, ctap.CredMgmtGetCredsMetadata, nil); s != ctap.StatusOK {
				t.Errorf("status %v", s)
			}
		}
	})
	t.Run("not on a key without PIN or UV", func(t *testing.T) {
		k := newTestKey(t, &Config{NoClientPIN: true})
		if s, _ := credMgmt(t, k, ctap.CmdCredentialManagement, 2, nil, ctap.CredMgmtGetCredsMetadata, nil); s != ctap.StatusInvalidCommand {
			t.Errorf("status %v", s)
		}
	})
}
