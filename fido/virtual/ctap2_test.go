package virtual

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// TestHandleCBORRejects sends malformed and refused requests and checks the
// exact status, that the answer is that status alone, and that the key's
// state is untouched.
func TestHandleCBORRejects(t *testing.T) {
	hash := pair(1, cdh)
	rp := pair(2, map[string]any{"id": testRPID})
	user := pair(3, map[string]any{"id": []byte{1}})
	algs := pair(4, []any{map[string]any{"type": "public-key", "alg": -7}})
	mc := func(pairs ...[]byte) []byte { return cmd(ctap.CmdMakeCredential, mapOf(pairs...)) }
	ga := func(pairs ...[]byte) []byte {
		return cmd(ctap.CmdGetAssertion, mapOf(append([][]byte{pair(1, testRPID), pair(2, cdh)}, pairs...)...))
	}
	deep := []byte{0x81}
	for range 12 {
		deep = append([]byte{0x81}, deep...)
	}
	deep = append(deep, 0x01)
	manyInts := []byte{0x99, 0x01, 0x2c} // array of 300
	for range 300 {
		manyInts = append(manyInts, 0x01)
	}
	descs := func(n int) []any {
		var ds []any
		for i := range n {
			ds = append(ds, map[string]any{"type": "public-key", "id": []byte{byte(i), 2, 3}})
		}
		return ds
	}

	tests := []struct {
		name string
		req  func(id []byte) []byte // id: the key's discoverable credential
		want ctap.Status
	}{
		{"empty message", func([]byte) []byte { return nil }, ctap.StatusInvalidLength},
		{"unknown command", func([]byte) []byte { return []byte{0x55} }, ctap.StatusInvalidCommand},
		{"vendor command", func([]byte) []byte { return []byte{0x42, 0xA0} }, ctap.StatusInvalidCommand},
		{"credentialManagement preview without a subcommand", func([]byte) []byte { return []byte{0x41, 0xA0} }, ctap.StatusMissingParameter},
		{"bioEnrollment not implemented", func([]byte) []byte { return cmd(ctap.CmdBioEnrollment, mapOf(pair(1, 1))) }, ctap.StatusInvalidCommand},
		{"clientPin reserved subcommand", func([]byte) []byte { return cmd(ctap.CmdClientPIN, mapOf(pair(1, 1), pair(2, 8))) }, ctap.StatusInvalidSubcommand},
		{"clientPin getUVRetries without built-in UV", func([]byte) []byte { return cmd(ctap.CmdClientPIN, mapOf(pair(2, 7))) }, ctap.StatusInvalidSubcommand},
		{"clientPin without parameters", func([]byte) []byte { return []byte{byte(ctap.CmdClientPIN)} }, ctap.StatusInvalidCBOR},
		{"getInfo with parameters", func([]byte) []byte { return cmd(ctap.CmdGetInfo, []byte{0xA0}) }, ctap.StatusInvalidLength},
		{"getNextAssertion with parameters", func([]byte) []byte { return cmd(ctap.CmdGetNextAssertion, []byte{0xA0}) }, ctap.StatusInvalidLength},
		{"reset with parameters", func([]byte) []byte { return cmd(ctap.CmdReset, []byte{0xA0}) }, ctap.StatusInvalidLength},
		{"selection with parameters", func([]byte) []byte { return cmd(ctap.CmdSelection, []byte{0xA0}) }, ctap.StatusInvalidLength},
		{"getNextAssertion without getAssertion", func([]byte) []byte { return []byte{byte(ctap.CmdGetNextAssertion)} }, ctap.StatusNotAllowed},

		{"makeCredential without parameters", func([]byte) []byte { return []byte{byte(ctap.CmdMakeCredential)} }, ctap.StatusInvalidCBOR},
		{"not CBOR", func([]byte) []byte { return cmd(ctap.CmdMakeCredential, []byte{0xFF}) }, ctap.StatusInvalidCBOR},
		{"truncated CBOR", func([]byte) []byte { return cmd(ctap.CmdMakeCredential, []byte{0xA4, 0x01, 0x58, 0x20, 1, 2}) }, ctap.StatusInvalidCBOR},
		{"not a map", func([]byte) []byte { return cmd(ctap.CmdMakeCredential, ctap.MustMarshal([]int{1})) }, ctap.StatusCBORUnexpectedType},
		{"clientDataHash of wrong type", func([]byte) []byte { return mc(pair(1, "hash"), rp, user, algs) }, ctap.StatusCBORUnexpectedType},
		{"rp of wrong type", func([]byte) []byte { return mc(hash, pair(2, 5), user, algs) }, ctap.StatusCBORUnexpectedType},
		{"rp.id of wrong type", func([]byte) []byte { return mc(hash, pair(2, map[string]any{"id": 5}), user, algs) }, ctap.StatusCBORUnexpectedType},
		{"user.id as text", func([]byte) []byte { return mc(hash, rp, pair(3, map[string]any{"id": "alice"}), algs) }, ctap.StatusCBORUnexpectedType},
		{"pubKeyCredParams not an array", func([]byte) []byte { return mc(hash, rp, user, pair(4, map[string]any{"alg": -7})) }, ctap.StatusCBORUnexpectedType},
		{"option not a boolean", func([]byte) []byte { return mc(hash, rp, user, algs, pair(7, map[string]any{"rk": 1})) }, ctap.StatusCBORUnexpectedType},
		{"option null", func([]byte) []byte {
			return mc(hash, rp, user, algs, append(ctap.MustMarshal(7), 0xA1, 0x62, 'r', 'k', 0xF6))
		}, ctap.StatusCBORUnexpectedType},
		{"missing clientDataHash", func([]byte) []byte { return mc(rp, user, algs) }, ctap.StatusMissingParameter},
		{"missing rp", func([]byte) []byte { return mc(hash, user, algs) }, ctap.StatusMissingParameter},
		{"missing rp.id", func([]byte) []byte { return mc(hash, pair(2, map[string]any{"name": "x"}), user, algs) }, ctap.StatusMissingParameter},
		{"missing user", func([]byte) []byte { return mc(hash, rp, algs) }, ctap.StatusMissingParameter},
		{"missing pubKeyCredParams", func([]byte) []byte { return mc(hash, rp, user) }, ctap.StatusMissingParameter},
		{"pubKeyCredParams entry without alg", func([]byte) []byte {
			return mc(hash, rp, user, pair(4, []any{map[string]any{"type": "public-key"}}))
		}, ctap.StatusMissingParameter},
		{"excludeList entry without id", func([]byte) []byte {
			return mc(hash, rp, user, algs, pair(5, []any{map[string]any{"type": "public-key"}}))
		}, ctap.StatusMissingParameter},
		{"short clientDataHash", func([]byte) []byte { return mc(pair(1, []byte{1}), rp, user, algs) }, ctap.StatusInvalidParameter},
		{"user.id of 65 bytes", func([]byte) []byte { return mc(hash, rp, pair(3, map[string]any{"id": make([]byte, 65)}), algs) }, ctap.StatusInvalidParameter},
		{"trailing bytes", func([]byte) []byte { return append(mc(hash, rp, user, algs), 0x00) }, ctap.StatusInvalidCBOR},
		{"duplicate key", func([]byte) []byte { return mc(hash, rp, user, algs, hash) }, ctap.StatusInvalidCBOR},
		{"keys out of order", func([]byte) []byte { return mc(rp, hash, user, algs) }, ctap.StatusInvalidCBOR},
		{"non-minimal integer key", func([]byte) []byte {
			return cmd(ctap.CmdMakeCredential, slices.Concat([]byte{0xA4, 0x18, 0x01}, ctap.MustMarshal(cdh), rp, user, algs))
		}, ctap.StatusInvalidCBOR},
		{"indefinite-length map", func([]byte) []byte {
			return cmd(ctap.CmdMakeCredential, slices.Concat([]byte{0xBF}, hash, rp, user, algs, []byte{0xFF}))
		}, ctap.StatusInvalidCBOR},
		{"tagged value", func([]byte) []byte { return mc(hash, rp, user, algs, append([]byte{0x06, 0xC1}, 0x01)) }, ctap.StatusInvalidCBOR},
		{"invalid UTF-8", func([]byte) []byte { return mc(hash, []byte{0x02, 0xA1, 0x62, 'i', 'd', 0x62, 0xFF, 0xFE}, user, algs) }, ctap.StatusInvalidCBOR},
		{"deep nesting", func([]byte) []byte { return mc(hash, rp, user, algs, append([]byte{0x06}, deep...)) }, ctap.StatusInvalidCBOR},
		{"array too long", func([]byte) []byte { return mc(hash, rp, user, algs, append([]byte{0x06}, manyInts...)) }, ctap.StatusLimitExceeded},
		{"no supported algorithm", func([]byte) []byte {
			return mc(hash, rp, user, pair(4, []any{map[string]any{"type": "public-key", "alg": -257}}))
		}, ctap.StatusUnsupportedAlgorithm},
		{"algorithm of an unknown type", func([]byte) []byte {
			return mc(hash, rp, user, pair(4, []any{map[string]any{"type": "secret-key", "alg": -7}}))
		}, ctap.StatusUnsupportedAlgorithm},
		{"uv option without built-in UV", func([]byte) []byte { return mc(hash, rp, user, algs, pair(7, map[string]bool{"uv": true})) }, ctap.StatusInvalidOption},
		{"up false in makeCredential", func([]byte) []byte { return mc(hash, rp, user, algs, pair(7, map[string]bool{"up": false})) }, ctap.StatusInvalidOption},
		{"enterprise attestation", func([]byte) []byte { return mc(hash, rp, user, algs, pair(10, 1)) }, ctap.StatusInvalidParameter},
		{"pinUvAuthParam without protocol", func([]byte) []byte { return mc(hash, rp, user, algs, pair(8, []byte{1, 2, 3})) }, ctap.StatusMissingParameter},
		{"pinUvAuthParam with unsupported protocol", func([]byte) []byte {
			return mc(hash, rp, user, algs, pair(8, []byte{1, 2, 3}), pair(9, 3))
		}, ctap.StatusInvalidParameter},
		{"pinUvAuthParam without a PIN", func([]byte) []byte {
			return mc(hash, rp, user, algs, pair(8, make([]byte, 16)), pair(9, 1))
		}, ctap.StatusPINNotSet},
		{"largeBlobKey false", func([]byte) []byte {
			return mc(hash, rp, user, algs, pair(6, map[string]any{"largeBlobKey": false}), pair(7, map[string]bool{"rk": true}))
		}, ctap.StatusInvalidOption},
		{"largeBlobKey without rk", func([]byte) []byte { return mc(hash, rp, user, algs, pair(6, map[string]any{"largeBlobKey": true})) }, ctap.StatusInvalidOption},
		{"hmac-secret of wrong type", func([]byte) []byte { return mc(hash, rp, user, algs, pair(6, map[string]any{"hmac-secret": 1})) }, ctap.StatusCBORUnexpectedType},
		{"excludeList over maxCredentialCountInList", func([]byte) []byte { return mc(hash, rp, user, algs, pair(5, descs(9))) }, ctap.StatusLimitExceeded},
		{"request over maxMsgSize", func([]byte) []byte { return mc(hash, rp, user, algs, pair(6, map[string]any{"x": make([]byte, 1300)})) }, ctap.StatusRequestTooLarge},

		{"getAssertion missing rpId", func([]byte) []byte { return cmd(ctap.CmdGetAssertion, mapOf(pair(2, cdh))) }, ctap.StatusMissingParameter},
		{"getAssertion missing clientDataHash", func([]byte) []byte { return cmd(ctap.CmdGetAssertion, mapOf(pair(1, testRPID))) }, ctap.StatusMissingParameter},
		{"getAssertion rpId of wrong type", func([]byte) []byte { return cmd(ctap.CmdGetAssertion, mapOf(pair(1, []byte("x")), pair(2, cdh))) }, ctap.StatusCBORUnexpectedType},
		{"getAssertion rk option", func([]byte) []byte { return ga(pair(5, map[string]bool{"rk": true})) }, ctap.StatusUnsupportedOption},
		{"getAssertion rk false", func([]byte) []byte { return ga(pair(5, map[string]bool{"rk": false})) }, ctap.StatusUnsupportedOption},
		{"getAssertion uv option", func([]byte) []byte { return ga(pair(5, map[string]bool{"uv": true})) }, ctap.StatusInvalidOption},
		{"getAssertion pinUvAuthParam without protocol", func([]byte) []byte { return ga(pair(6, []byte{1})) }, ctap.StatusMissingParameter},
		{"getAssertion allowList over limit", func([]byte) []byte { return ga(pair(3, descs(9))) }, ctap.StatusLimitExceeded},
		{"getAssertion unknown credentials", func([]byte) []byte { return ga(pair(3, descs(3))) }, ctap.StatusNoCredentials},
		{"getAssertion our ID under another type", func(id []byte) []byte {
			return ga(pair(3, []any{map[string]any{"type": "other", "id": id}}))
		}, ctap.StatusNoCredentials},
		{"getAssertion another RP", func(id []byte) []byte {
			return cmd(ctap.CmdGetAssertion, mapOf(pair(1, "other.example"), pair(2, cdh), pair(3, []any{map[string]any{"type": "public-key", "id": id}})))
		}, ctap.StatusNoCredentials},
		{"getAssertion no discoverable credential for RP", func([]byte) []byte {
			return cmd(ctap.CmdGetAssertion, mapOf(pair(1, "other.example"), pair(2, cdh)))
		}, ctap.StatusNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Once set up, any touch would be a bug: every request here
			// must fail before the key asks for one.
			var setUp atomic.Bool
			k := newTestKey(t, &Config{UserPresence: func(context.Context, PresenceRequest) error {
				if setUp.Load() {
					t.Error("the key asked for a touch")
					return ErrDenied
				}
				return nil
			}})
			// One discoverable credential, so "state unchanged" has
			// something to lose.
			_, ad := makeCredential(t, k, mcRequest("alice", true))
			setUp.Store(true)
			before := snapshot(t, k)
			got := k.handleCBOR(context.Background(), tt.req(ad.Attested.CredentialID), nil)
			if len(got) != 1 || ctap.Status(got[0]) != tt.want {
				t.Errorf("answer %x, want lone %v", got, tt.want)
			}
			checkUnchanged(t, k, before, "a rejected request")
		})
	}
}

func TestGetInfo(t *testing.T) {
	v21Opts := map[string]bool{"rk": true, "up": true, "plat": false, "clientPin": false, "pinUvAuthToken": true,
		"credMgmt": true, "credentialMgmtPreview": true, "authnrCfg": true, "alwaysUv": false, "makeCredUvNotRqd": true, "setMinPINLength": true, "largeBlobs": true}
	with := func(m map[string]bool, kv ...any) map[string]bool {
		m = maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			if v, ok := kv[i+1].(bool); ok {
				m[kv[i].(string)] = v
			} else {
				delete(m, kv[i].(string))
			}
		}
		return m
	}
	allExts := []string{"credBlob", "credProtect", "hmac-secret", "largeBlobKey", "minPinLength"}
	tests := []struct {
		name      string
		cfg       *Config
		versions  []string
		v21       bool
		opts      map[string]bool
		protocols []uint64
		exts      []string
	}{
		{"defaults", nil, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, true, v21Opts, []uint64{2, 1}, allExts},
		{"CTAP 2.0", &Config{CTAPVersion: CTAP20}, []string{"FIDO_2_0", "U2F_V2"}, false,
			map[string]bool{"rk": true, "up": true, "plat": false, "clientPin": false, "credentialMgmtPreview": true},
			[]uint64{1}, []string{"credProtect", "hmac-secret"}},
		{"no U2F", &Config{NoU2F: true}, []string{"FIDO_2_0", "FIDO_2_1"}, true, v21Opts, []uint64{2, 1}, allExts},
		{"PIN set", &Config{PIN: "1234"}, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, true,
			with(v21Opts, "clientPin", true), []uint64{2, 1}, allExts},
		{"always UV", &Config{AlwaysUV: true}, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, true,
			with(v21Opts, "alwaysUv", true, "makeCredUvNotRqd", false), []uint64{2, 1}, allExts},
		{"built-in UV", &Config{BuiltInUV: true}, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, true,
			with(v21Opts, "uv", true, "uvAcfg", true), []uint64{2, 1}, allExts},
		{"no PIN, no UV", &Config{NoClientPIN: true, NoLargeBlobs: true, NoCredBlob: true}, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, true,
			with(v21Opts, "clientPin", nil, "pinUvAuthToken", nil, "credMgmt", nil, "credentialMgmtPreview", nil, "setMinPINLength", nil, "largeBlobs", nil),
			nil, []string{"credProtect"}},
		{"UV but no PIN", &Config{NoClientPIN: true, BuiltInUV: true}, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, true,
			with(v21Opts, "clientPin", nil, "setMinPINLength", nil, "uv", true, "uvAcfg", true),
			[]uint64{2, 1}, []string{"credBlob", "credProtect", "hmac-secret", "largeBlobKey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, tt.cfg)
			s, body := do(t, k, ctap.CmdGetInfo, nil)
			if s != ctap.StatusOK {
				t.Fatal(s)
			}
			if err := ctap.CheckCanonical("getInfo", body); err != nil {
				t.Fatal(err)
			}
			info, err := ctap.DecodeGetInfoResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Versions, tt.versions) {
				t.Errorf("versions %q, want %q", info.Versions, tt.versions)
			}
			if !bytes.Equal(info.AAGUID, DefaultAAGUID[:]) {
				t.Errorf("aaguid %x", info.AAGUID)
			}
			if !maps.Equal(info.Options, tt.opts) {
				t.Errorf("options %v, want %v", info.Options, tt.opts)
			}
			if info.MaxMsgSize != 1200 || !slices.Equal(info.PinUvAuthProtocols, tt.protocols) || !slices.Equal(info.Extensions, tt.exts) {
				t.Errorf("maxMsgSize %d, pinUvAuthProtocols %v, extensions %v", info.MaxMsgSize, info.PinUvAuthProtocols, info.Extensions)
			}
			if !tt.v21 {
				if info.MaxCredentialCountInList != 0 || info.Algorithms != nil || info.RemainingDiscoverableCredentials != nil ||
					info.MinPINLength != 0 || info.MaxSerializedLargeBlobArray != 0 {
					t.Errorf("CTAP 2.0 key reports 2.1 fields: %+v", info)
				}
				return
			}
			if info.MaxCredentialCountInList != 8 || info.MaxCredentialIDLength != 128 ||
				!slices.Equal(info.Transports, []string{"usb"}) || info.FirmwareVersion != 0x000100 {
				t.Errorf("limits %+v", info)
			}
			want := []ctap.CredentialParam{{Type: "public-key", Alg: -7}, {Type: "public-key", Alg: -8}}
			if !slices.Equal(info.Algorithms, want) {
				t.Errorf("algorithms %v", info.Algorithms)
			}
			if r := info.RemainingDiscoverableCredentials; r == nil || *r != 25 {
				t.Errorf("remainingDiscoverableCredentials %v", r)
			}
			pin := tt.cfg == nil || !tt.cfg.NoClientPIN
			if pin && (info.MinPINLength != 4 || info.MaxRPIDsForSetMinPINLength == 0) || !pin && info.MinPINLength != 0 {
				t.Errorf("minPINLength %d, maxRPIDsForSetMinPINLength %d", info.MinPINLength, info.MaxRPIDsForSetMinPINLength)
			}
			if info.Options["largeBlobs"] != (info.MaxSerializedLargeBlobArray == 1024) {
				t.Errorf("maxSerializedLargeBlobArray %d", info.MaxSerializedLargeBlobArray)
			}
			if slices.Contains(info.Extensions, "credBlob") != (info.MaxCredBlobLength == 32) {
				t.Errorf("maxCredBlobLength %d", info.MaxCredBlobLength)
			}
			if info.Options["uv"] != (info.PreferredPlatformUvAttempts == 3 && info.UVModality == 2) {
				t.Errorf("preferredPlatformUvAttempts %d, uvModality %d", info.PreferredPlatformUvAttempts, info.UVModality)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		want byte
	}{
		{"defaults", nil, hid.CapWink | hid.CapCBOR},
		{"U2F only", &Config{U2FOnly: true}, hid.CapWink},
		{"no U2F", &Config{NoU2F: true}, hid.CapWink | hid.CapCBOR | hid.CapNMSG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, tt.cfg)
			ch, err := hid.Open(context.Background(), k.Conn())
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			info := ch.Info()
			if info.Capabilities != tt.want || info.Major != firmwareMajor || info.Minor != firmwareMinor || info.Build != firmwareBuild {
				t.Errorf("INIT %+v, want capabilities %#x", info, tt.want)
			}
		})
	}
}

func TestMakeCredentialOptions(t *testing.T) {
	tests := []struct {
		name    string
		cfg     *Config
		options map[string]bool
		want    ctap.Status
	}{
		{"up true on CTAP 2.1", nil, map[string]bool{"up": true}, ctap.StatusOK},
		{"up true on CTAP 2.0", &Config{CTAPVersion: CTAP20}, map[string]bool{"up": true}, ctap.StatusInvalidOption},
		{"rk and uv false", nil, map[string]bool{"rk": false, "uv": false}, ctap.StatusOK},
		{"unknown option ignored", nil, map[string]bool{"zz": true}, ctap.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, tt.cfg)
			r := mcRequest("alice", false)
			r.Options = tt.options
			if s, _ := do(t, k, ctap.CmdMakeCredential, r); s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
		})
	}
	t.Run("unknown and turned-off extensions ignored", func(t *testing.T) {
		k := newTestKey(t, &Config{NoCredProtect: true})
		r := mcRequest("alice", false)
		r.Extensions = map[string]cbor.RawMessage{"credProtect": ctap.MustMarshal(2), "x-unknown": ctap.MustMarshal(1)}
		resp, ad := makeCredential(t, k, r)
		if ad.Flags&ctap.FlagED != 0 || ad.Extensions != nil || resp.Format != "packed" {
			t.Errorf("flags %#x, extensions %x", ad.Flags, ad.Extensions)
		}
	})
}

// TestPinUvAuthParamAsksForTouch: an empty pinUvAuthParam is how a CTAP
// 2.0 platform makes a key blink (CTAP 2.1 §6.1.2 and §6.2.2 step 1).
func TestPinUvAuthParamAsksForTouch(t *testing.T) {
	for _, c := range []ctap.Command{ctap.CmdMakeCredential, ctap.CmdGetAssertion} {
		for _, press := range []bool{true, false} {
			t.Run(c.String()+map[bool]string{true: "/pressed", false: "/refused"}[press], func(t *testing.T) {
				b := NewButton()
				k := newTestKey(t, &Config{UserPresence: b.Presence()})
				var req []byte
				if c == ctap.CmdMakeCredential {
					r := mcRequest("alice", false)
					r.PinUvAuthParam, r.PinUvAuthProtocol = []byte{}, 1
					req, _ = ctap.EncodeRequest(c, r)
				} else {
					req = cmd(c, mapOf(pair(1, testRPID), pair(2, cdh), pair(6, []byte{}), pair(7, 1)))
				}
				before := snapshot(t, k)
				done := make(chan []byte, 1)
				go func() { done <- k.handleCBOR(context.Background(), req, nil) }()
				if r := <-b.Waiting(); r.RPID != testRPID {
					t.Errorf("touch requested for %+v", r)
				}
				want := ctap.StatusPINNotSet
				if press {
					b.Press()
				} else {
					b.Refuse()
					want = ctap.StatusOperationDenied
				}
				if got := <-done; len(got) != 1 || ctap.Status(got[0]) != want {
					t.Errorf("answer %x, want %v", got, want)
				}
				checkUnchanged(t, k, before, "a touch request")
			})
		}
	}
}

func TestKeyStoreFull(t *testing.T) {
	b := NewButton()
	k := newTestKey(t, &Config{ResidentKeySlots: 2, UserPresence: b.Presence()})
	b.Press()
	makeCredential(t, k, mcRequest("alice", true))
	b.Press()
	makeCredential(t, k, mcRequest("bob", true))
	before := snapshot(t, k)

	// CTAP 2.1 §6.1.2 step 17: the key finds it has no room after the
	// touch.
	done := make(chan ctap.Status, 1)
	go func() { s, _ := do(t, k, ctap.CmdMakeCredential, mcRequest("carol", true)); done <- s }()
	<-b.Waiting()
	b.Press()
	if s := <-done; s != ctap.StatusKeyStoreFull {
		t.Fatalf("third discoverable credential: %v", s)
	}
	checkUnchanged(t, k, before, "KEY_STORE_FULL")

	// Non-discoverable credentials need no room, and a new credential for
	// a user the key holds replaces the old one.
	b.Press()
	makeCredential(t, k, mcRequest("carol", false))
	b.Press()
	_, ad := makeCredential(t, k, mcRequest("bob", true))
	creds := k.Credentials()
	if len(creds) != 2 || string(creds[1].UserID) != "bob" || !bytes.Equal(creds[1].ID, ad.Attested.CredentialID) {
		t.Errorf("credentials after replacing bob's: %+v", creds)
	}
	s, body := do(t, k, ctap.CmdGetInfo, nil)
	info, err := ctap.DecodeGetInfoResponse(body)
	if s != ctap.StatusOK || err != nil || *info.RemainingDiscoverableCredentials != 0 {
		t.Errorf("getInfo: %v %v %+v", s, err, info)
	}
}

func TestExcludeList(t *testing.T) {
	b := NewButton()
	k := newTestKey(t, &Config{UserPresence: b.Presence()})
	b.Press()
	_, nonRK := makeCredential(t, k, mcRequest("alice", false))
	b.Press()
	_, rk := makeCredential(t, k, mcRequest("bob", true))

	for _, tt := range []struct {
		name  string
		id    []byte
		press bool
		want  ctap.Status
	}{
		{"non-discoverable, touched", nonRK.Attested.CredentialID, true, ctap.StatusCredentialExcluded},
		{"discoverable, touched", rk.Attested.CredentialID, true, ctap.StatusCredentialExcluded},
		{"refused", nonRK.Attested.CredentialID, false, ctap.StatusOperationDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mcRequest("carol", true)
			r.ExcludeList = []ctap.CredentialDescriptor{{Type: "public-key", ID: []byte("unrelated")}, {Type: "public-key", ID: tt.id}}
			before := snapshot(t, k)
			done := make(chan ctap.Status, 1)
			go func() { s, _ := do(t, k, ctap.CmdMakeCredential, r); done <- s }()
			// The key asks for the touch before it says anything.
			if req := <-b.Waiting(); req.Op != OpMakeCredential || req.RPID != testRPID {
				t.Errorf("touch requested for %+v", req)
			}
			if tt.press {
				b.Press()
			} else {
				b.Refuse()
			}
			if s := <-done; s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
			checkUnchanged(t, k, before, "an excluded makeCredential")
		})
	}
	t.Run("another RP's credential", func(t *testing.T) {
		r := mcRequest("carol", false)
		r.RP.ID = "other.example"
		r.ExcludeList = []ctap.CredentialDescriptor{{Type: "public-key", ID: nonRK.Attested.CredentialID}}
		b.Press()
		makeCredential(t, k, r)
	})
}

func TestAlgorithmsAndSignatures(t *testing.T) {
	for _, alg := range []int64{ctap.AlgES256, ctap.AlgEdDSA} {
		for _, rk := range []bool{false, true} {
			t.Run(fido.Algorithm(alg).String()+map[bool]string{true: "/discoverable", false: "/non-discoverable"}[rk], func(t *testing.T) {
				k := newTestKey(t, &Config{Attestation: AttestationSelf})
				// The RP's first choice is unsupported; the key takes the
				// first one it supports.
				resp, ad := makeCredential(t, k, mcRequest("alice", rk, ctap.AlgRS256, alg))
				if ad.RPIDHash != sha256.Sum256([]byte(testRPID)) || ad.Flags != ctap.FlagUP|ctap.FlagAT || ad.Attested.AAGUID != DefaultAAGUID {
					t.Errorf("authData %+v", ad)
				}
				gotAlg, _, err := ctap.ParsePublicKey(ad.Attested.PublicKey)
				if err != nil || gotAlg != alg {
					t.Fatalf("credential algorithm %d, %v", gotAlg, err)
				}
				// Self attestation: signed by the credential's own key.
				var stmt struct {
					Alg int64  `cbor:"alg"`
					Sig []byte `cbor:"sig"`
				}
				if err := ctap.Unmarshal("attStmt", resp.AttStmt, &stmt); err != nil || stmt.Alg != alg {
					t.Fatalf("attStmt %+v: %v", stmt, err)
				}
				if !verify(t, ad.Attested.PublicKey, resp.AuthData, cdh, stmt.Sig) {
					t.Error("self attestation signature does not verify")
				}
				last := ad.SignCount
				for i := range 3 {
					a, aad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID))
					if !verify(t, ad.Attested.PublicKey, a.AuthData, cdh, a.Signature) {
						t.Errorf("assertion %d: signature does not verify", i)
					}
					if aad.SignCount <= last || aad.Flags != ctap.FlagUP || aad.Attested != nil {
						t.Errorf("assertion %d: counter %d after %d, flags %#x", i, aad.SignCount, last, aad.Flags)
					}
					last = aad.SignCount
					if !bytes.Equal(a.Credential.ID, ad.Attested.CredentialID) || a.NumberOfCredentials != 0 {
						t.Errorf("assertion %+v", a)
					}
					if rk != (a.User != nil) {
						t.Errorf("user %+v for a credential with rk=%v", a.User, rk)
					}
				}
			})
		}
	}
}

func TestPackedAndNoneAttestation(t *testing.T) {
	ca, err := NewAttestationCA(nil, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("packed", func(t *testing.T) {
		k := newTestKey(t, &Config{AttestationCA: ca})
		resp, ad := makeCredential(t, k, mcRequest("alice", false))
		var stmt struct {
			Alg int64    `cbor:"alg"`
			Sig []byte   `cbor:"sig"`
			X5C [][]byte `cbor:"x5c"`
		}
		if err := ctap.Unmarshal("attStmt", resp.AttStmt, &stmt); err != nil || resp.Format != "packed" || stmt.Alg != ctap.AlgES256 || len(stmt.X5C) != 1 {
			t.Fatalf("%s %+v: %v", resp.Format, stmt, err)
		}
		cert, err := x509.ParseCertificate(stmt.X5C[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignatureFrom(ca.Certificate); err != nil {
			t.Errorf("batch certificate not issued by the CA: %v", err)
		}
		h := sha256.Sum256(append(bytes.Clone(resp.AuthData), cdh...))
		if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), h[:], stmt.Sig) {
			t.Error("packed attestation signature does not verify")
		}
		if ad.Attested.AAGUID != DefaultAAGUID {
			t.Errorf("aaguid %x", ad.Attested.AAGUID)
		}
	})
	t.Run("none", func(t *testing.T) {
		k := newTestKey(t, &Config{Attestation: AttestationNone})
		resp, _ := makeCredential(t, k, mcRequest("alice", false))
		if resp.Format != "none" || !bytes.Equal(resp.AttStmt, []byte{0xA0}) {
			t.Errorf("fmt %q, attStmt %x", resp.Format, resp.AttStmt)
		}
	})
}

// TestDiscoverableCredentials: several accounts on one RP come back newest
// first, the first with numberOfCredentials and the rest through
// getNextAssertion (CTAP 2.1 §6.2.2 step 12, §6.3).
func TestDiscoverableCredentials(t *testing.T) {
	clock := newTestClock()
	k := newTestKey(t, &Config{Clock: clock.Now})
	pubs := map[string][]byte{}
	for _, u := range []string{"alice", "bob", "carol"} {
		_, ad := makeCredential(t, k, mcRequest(u, true))
		pubs[u] = ad.Attested.PublicKey
		clock.Advance(time.Minute)
	}
	other := mcRequest("zed", true)
	other.RP.ID = "other.example"
	makeCredential(t, k, other)
	makeCredential(t, k, mcRequest("dave", false)) // not discoverable

	check := func(t *testing.T, a *ctap.GetAssertionResponse, user string, n int) {
		t.Helper()
		if a.User == nil || string(a.User.ID) != user || a.User.Name != "" || a.User.DisplayName != "" {
			t.Errorf("user %+v, want ID %q only (no user verification)", a.User, user)
		}
		if a.NumberOfCredentials != n {
			t.Errorf("numberOfCredentials %d, want %d", a.NumberOfCredentials, n)
		}
		if !verify(t, pubs[user], a.AuthData, cdh, a.Signature) {
			t.Errorf("%s's signature does not verify", user)
		}
	}
	t.Run("newest first", func(t *testing.T) {
		a, ad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest())
		check(t, a, "carol", 3)
		last := ad.SignCount
		for _, u := range []string{"bob", "alice"} {
			a, ad := getAssertion(t, k, ctap.CmdGetNextAssertion, nil)
			check(t, a, u, 0)
			if ad.SignCount != last+1 || ad.Flags != ctap.FlagUP {
				t.Errorf("counter %d after %d, flags %#x", ad.SignCount, last, ad.Flags)
			}
			last = ad.SignCount
		}
		if s, _ := do(t, k, ctap.CmdGetNextAssertion, nil); s != ctap.StatusNotAllowed {
			t.Errorf("getNextAssertion past the last: %v", s)
		}
	})
	t.Run("allowList", func(t *testing.T) {
		id := k.Credentials()[0].ID // alice's
		a, _ := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest([]byte("unknown"), id))
		check(t, a, "alice", 0)
		if s, _ := do(t, k, ctap.CmdGetNextAssertion, nil); s != ctap.StatusNotAllowed {
			t.Errorf("getNextAssertion after an allowList: %v", s)
		}
	})
	t.Run("timer", func(t *testing.T) {
		getAssertion(t, k, ctap.CmdGetAssertion, gaRequest())
		clock.Advance(20 * time.Second)
		getAssertion(t, k, ctap.CmdGetNextAssertion, nil)
		clock.Advance(20 * time.Second) // 40 s in all, 20 s since the last
		getAssertion(t, k, ctap.CmdGetNextAssertion, nil)

		getAssertion(t, k, ctap.CmdGetAssertion, gaRequest())
		clock.Advance(31 * time.Second)
		if s, _ := do(t, k, ctap.CmdGetNextAssertion, nil); s != ctap.StatusNotAllowed {
			t.Errorf("getNextAssertion after 31 s: %v", s)
		}
	})
	for name, between := range map[string]func(){
		"another command": func() { do(t, k, ctap.CmdGetInfo, nil) },
		"a rejected one":  func() { k.handleCBOR(context.Background(), []byte{0x55}, nil) },
		"replug":          k.Replug,
	} {
		t.Run("ended by "+name, func(t *testing.T) {
			getAssertion(t, k, ctap.CmdGetAssertion, gaRequest())
			between()
			if s, _ := do(t, k, ctap.CmdGetNextAssertion, nil); s != ctap.StatusNotAllowed {
				t.Errorf("getNextAssertion: %v", s)
			}
		})
	}
	t.Run("one account", func(t *testing.T) {
		r := gaRequest()
		r.RPID = "other.example"
		a, _ := getAssertion(t, k, ctap.CmdGetAssertion, r)
		if a.NumberOfCredentials != 1 || string(a.User.ID) != "zed" {
			t.Errorf("%+v", a)
		}
	})
}

func TestUserPresenceOff(t *testing.T) {
	b := NewButton()
	k := newTestKey(t, &Config{UserPresence: b.Presence()})
	b.Press()
	_, ad := makeCredential(t, k, mcRequest("alice", false))
	// up=false: no touch is asked for (nobody presses) and UP is clear.
	r := gaRequest(ad.Attested.CredentialID)
	r.Options = map[string]bool{ctap.OptUP: false}
	a, aad := getAssertion(t, k, ctap.CmdGetAssertion, r)
	if aad.Flags&ctap.FlagUP != 0 || !verify(t, ad.Attested.PublicKey, a.AuthData, cdh, a.Signature) {
		t.Errorf("flags %#x", aad.Flags)
	}
}

func TestPresenceOutcomes(t *testing.T) {
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	tests := []struct {
		name string
		cfg  func(b *Button) *Config
		act  func(b *Button, cancel context.CancelFunc)
		want ctap.Status
	}{
		{"pressed", func(b *Button) *Config { return &Config{UserPresence: b.Presence()} },
			func(b *Button, _ context.CancelFunc) { <-b.Waiting(); b.Press() }, ctap.StatusOK},
		{"refused", func(b *Button) *Config { return &Config{UserPresence: b.Presence()} },
			func(b *Button, _ context.CancelFunc) { <-b.Waiting(); b.Refuse() }, ctap.StatusOperationDenied},
		{"denied by hook", func(*Button) *Config { return &Config{UserPresence: Deny} }, nil, ctap.StatusOperationDenied},
		{"hook error", func(*Button) *Config {
			return &Config{UserPresence: func(context.Context, PresenceRequest) error { return errors.New("sensor broken") }}
		}, nil, ctap.StatusOperationDenied},
		{"timed out", func(b *Button) *Config {
			return &Config{UserPresence: b.Presence(), UserPresenceTimeout: 20 * time.Millisecond}
		}, nil, ctap.StatusUserActionTimeout},
		{"hook ignores its context", func(*Button) *Config {
			return &Config{UserPresenceTimeout: 20 * time.Millisecond, UserPresence: func(context.Context, PresenceRequest) error {
				<-hung
				return nil
			}}
		}, nil, ctap.StatusUserActionTimeout},
		{"host cancels", func(b *Button) *Config { return &Config{UserPresence: b.Presence()} },
			func(b *Button, cancel context.CancelFunc) { <-b.Waiting(); cancel() }, ctap.StatusKeepaliveCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewButton()
			k := newTestKey(t, tt.cfg(b))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.act != nil {
				go tt.act(b, cancel)
			}
			before := snapshot(t, k)
			var rec statusRecorder
			req, _ := ctap.EncodeRequest(ctap.CmdMakeCredential, mcRequest("alice", true))
			got := k.handleCBOR(ctx, req, rec.set)
			if ctap.Status(got[0]) != tt.want {
				t.Fatalf("status %v, want %v", ctap.Status(got[0]), tt.want)
			}
			if s := rec.get(); len(s) != 2 || s[0] != hid.KeepaliveUPNeeded || s[1] != hid.KeepaliveProcessing {
				t.Errorf("keepalive statuses %v, want UPNEEDED then PROCESSING", s)
			}
			if tt.want != ctap.StatusOK {
				if len(got) != 1 {
					t.Errorf("answer %x", got)
				}
				checkUnchanged(t, k, before, "a failed touch")
			}
		})
	}
}

func TestReset(t *testing.T) {
	clock := newTestClock()
	b := NewButton()
	k := newTestKey(t, &Config{Clock: clock.Now, UserPresence: b.Presence()})
	b.Press()
	_, nonRK := makeCredential(t, k, mcRequest("alice", false))
	b.Press()
	makeCredential(t, k, mcRequest("bob", true))
	counter := k.Counter()

	reset := func() ctap.Status {
		done := make(chan ctap.Status, 1)
		go func() { s, _ := do(t, k, ctap.CmdReset, nil); done <- s }()
		return <-done
	}
	t.Run("late", func(t *testing.T) {
		clock.Advance(10*time.Second + time.Nanosecond)
		before := snapshot(t, k)
		if s := reset(); s != ctap.StatusNotAllowed { // no touch asked: nobody presses
			t.Fatalf("reset after 10 s: %v", s)
		}
		checkUnchanged(t, k, before, "a late reset")
	})
	t.Run("refused", func(t *testing.T) {
		k.Replug()
		clock.Advance(10 * time.Second)
		before := snapshot(t, k)
		go func() {
			if r := <-b.Waiting(); r.Op != OpReset {
				t.Errorf("touch requested for %+v", r)
			}
			b.Refuse()
		}()
		if s := reset(); s != ctap.StatusOperationDenied {
			t.Fatalf("refused reset: %v", s)
		}
		checkUnchanged(t, k, before, "a refused reset")
	})
	t.Run("done", func(t *testing.T) {
		k.Replug()
		go func() { <-b.Waiting(); b.Press() }()
		if s := reset(); s != ctap.StatusOK {
			t.Fatalf("reset: %v", s)
		}
		if n := len(k.Credentials()); n != 0 {
			t.Errorf("%d discoverable credentials survived", n)
		}
		if k.Counter() != counter {
			t.Errorf("counter %d after reset, want %d kept", k.Counter(), counter)
		}
		r := gaRequest(nonRK.Attested.CredentialID)
		r.Options = map[string]bool{ctap.OptUP: false}
		if s, _ := do(t, k, ctap.CmdGetAssertion, r); s != ctap.StatusNoCredentials {
			t.Errorf("old credential ID after reset: %v", s)
		}
	})
}

func TestSelection(t *testing.T) {
	b := NewButton()
	k := newTestKey(t, &Config{UserPresence: b.Presence()})
	for _, press := range []bool{true, false} {
		go func() {
			if r := <-b.Waiting(); r.Op != OpSelection {
				t.Errorf("touch requested for %+v", r)
			}
			if press {
				b.Press()
			} else {
				b.Refuse()
			}
		}()
		want := map[bool]ctap.Status{true: ctap.StatusOK, false: ctap.StatusOperationDenied}[press]
		if got := k.handleCBOR(context.Background(), []byte{byte(ctap.CmdSelection)}, nil); len(got) != 1 || ctap.Status(got[0]) != want {
			t.Errorf("selection (pressed %v): %x, want %v", press, got, want)
		}
	}
	k20 := newTestKey(t, &Config{CTAPVersion: CTAP20})
	if s, _ := do(t, k20, ctap.CmdSelection, nil); s != ctap.StatusInvalidCommand {
		t.Errorf("selection on a CTAP 2.0 key: %v", s)
	}
}

func TestMaxMsgSize(t *testing.T) {
	long := mcRequest("alice", false)
	long.RP.Name = string(bytes.Repeat([]byte{'x'}, 1500))
	tests := []struct {
		name string
		cfg  *Config
		want ctap.Status
	}{
		{"CTAP 2.1", nil, ctap.StatusRequestTooLarge},
		{"CTAP 2.0", &Config{CTAPVersion: CTAP20}, ctap.StatusInvalidLength},
		{"larger limit", &Config{MaxMsgSize: 2048}, ctap.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, tt.cfg)
			if s, _ := do(t, k, ctap.CmdMakeCredential, long); s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
		})
	}
	k := newTestKey(t, &Config{MaxMsgSize: 100000})
	_, body := do(t, k, ctap.CmdGetInfo, nil)
	if info, _ := ctap.DecodeGetInfoResponse(body); info.MaxMsgSize != hid.MaxMessageSize {
		t.Errorf("maxMsgSize %d, want the CTAPHID limit", info.MaxMsgSize)
	}
}

func TestMisbehaviour(t *testing.T) {
	t.Run("status override", func(t *testing.T) {
		k := newTestKey(t, &Config{StatusOverride: map[byte]fido.Status{
			byte(ctap.CmdMakeCredential): fido.StatusKeyStoreFull,
			byte(ctap.CmdGetInfo):        ctap.StatusOK,
		}})
		before := snapshot(t, k)
		if got := k.handleCBOR(context.Background(), cmd(ctap.CmdMakeCredential, ctap.MustMarshal(mcRequest("a", true))), nil); !bytes.Equal(got, []byte{0x28}) {
			t.Errorf("makeCredential: %x", got)
		}
		if got := k.handleCBOR(context.Background(), []byte{byte(ctap.CmdGetInfo)}, nil); !bytes.Equal(got, []byte{0}) {
			t.Errorf("getInfo: %x, want a bare OK", got)
		}
		checkUnchanged(t, k, before, "an overridden command")
		if s, _ := do(t, k, ctap.CmdGetAssertion, gaRequest()); s != ctap.StatusNoCredentials {
			t.Errorf("getAssertion is not overridden: %v", s)
		}
	})
	t.Run("UP and UV forced off", func(t *testing.T) {
		k := newTestKey(t, &Config{ForceUPOff: true, ForceUVOff: true})
		resp, ad := makeCredential(t, k, mcRequest("alice", false))
		a, aad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID))
		if ad.Flags != ctap.FlagAT || aad.Flags != 0 {
			t.Errorf("flags %#x and %#x, want UP clear", ad.Flags, aad.Flags)
		}
		// The signature is valid: only the flag lies.
		if !verify(t, ad.Attested.PublicKey, a.AuthData, cdh, a.Signature) || resp.Format != "packed" {
			t.Error("signature over the cleared flag does not verify")
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		k := newTestKey(t, &Config{BadSignature: true, Attestation: AttestationSelf})
		resp, ad := makeCredential(t, k, mcRequest("alice", false))
		var stmt struct {
			Sig []byte `cbor:"sig"`
		}
		if err := ctap.UnmarshalLenient("attStmt", resp.AttStmt, &stmt); err != nil {
			t.Fatal(err)
		}
		if verify(t, ad.Attested.PublicKey, resp.AuthData, cdh, stmt.Sig) {
			t.Error("attestation signature verifies")
		}
		a, _ := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID))
		if verify(t, ad.Attested.PublicKey, a.AuthData, cdh, a.Signature) {
			t.Error("assertion signature verifies")
		}
	})
	t.Run("counter rolled back", func(t *testing.T) {
		k := newTestKey(t, nil)
		_, ad := makeCredential(t, k, mcRequest("alice", false))
		for range 3 {
			getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID))
		}
		if k.Counter() != 4 {
			t.Errorf("counter %d after four signatures", k.Counter())
		}
		if err := k.SetCounter(1); err != nil {
			t.Fatal(err)
		}
		if _, aad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID)); aad.SignCount != 2 {
			t.Errorf("counter %d after rolling back to 1", aad.SignCount)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"negative slots":         {ResidentKeySlots: -1},
		"negative message size":  {MaxMsgSize: -1},
		"negative list length":   {MaxCredentialCountInList: -1},
		"short credential IDs":   {MaxCredentialIDLength: 32},
		"negative timeout":       {UserPresenceTimeout: -time.Second},
		"no protocol":            {U2FOnly: true, NoU2F: true},
		"RS256":                  {Algorithms: []fido.Algorithm{fido.RS256}},
		"unknown CTAP version":   {CTAPVersion: 7},
		"unknown attestation":    {Attestation: 9},
		"state file a directory": {StatePath: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			if k, err := New(cfg); err == nil {
				k.Close()
				t.Error("New succeeded")
			}
		})
	}
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	k, err := New(&Config{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	_, nonRK := makeCredential(t, k, mcRequest("alice", false))
	_, rk := makeCredential(t, k, mcRequest("bob", true))
	counter := k.Counter()
	k.Close()

	t.Run("reloaded", func(t *testing.T) {
		k := newTestKey(t, &Config{StatePath: path})
		if k.Counter() != counter || len(k.Credentials()) != 1 {
			t.Fatalf("counter %d, %d credentials", k.Counter(), len(k.Credentials()))
		}
		for _, ad := range []*ctap.AuthData{nonRK, rk} {
			a, aad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(ad.Attested.CredentialID))
			if !verify(t, ad.Attested.PublicKey, a.AuthData, cdh, a.Signature) || aad.SignCount <= counter {
				t.Errorf("after restart: counter %d", aad.SignCount)
			}
		}
	})
	t.Run("other AAGUID", func(t *testing.T) {
		if _, err := New(&Config{StatePath: path, AAGUID: [16]byte{1}}); err == nil {
			t.Error("New accepted a state file of another AAGUID")
		}
	})
	t.Run("other CA", func(t *testing.T) {
		ca, _ := NewAttestationCA(nil, "")
		if _, err := New(&Config{StatePath: path, AttestationCA: ca}); err == nil {
			t.Error("New accepted a state file of another CA")
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.json")
		os.WriteFile(bad, []byte("{"), 0o600)
		var se *StateError
		if _, err := New(&Config{StatePath: bad}); !errors.As(err, &se) {
			t.Errorf("New on a corrupt file: %v", err)
		}
	})
}

func TestBackupFlags(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    Config
		be, bs bool
	}{
		{"hardware key", Config{}, false, false},
		{"eligible", Config{BackupEligible: true}, true, false},
		{"backed up", Config{BackupEligible: true, BackupState: true}, true, true},
		{"inconsistent", Config{BackupState: true}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, &tt.cfg)
			_, mad := makeCredential(t, k, mcRequest("alice", false))
			_, gad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(mad.Attested.CredentialID))
			for _, ad := range []*ctap.AuthData{mad, gad} {
				if got := ad.Flags&ctap.FlagBE != 0; got != tt.be {
					t.Errorf("BE = %v, want %v", got, tt.be)
				}
				if got := ad.Flags&ctap.FlagBS != 0; got != tt.bs {
					t.Errorf("BS = %v, want %v", got, tt.bs)
				}
			}
		})
	}
}
