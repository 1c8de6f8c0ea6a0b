package virtual

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// credEnum is a credential management enumeration in progress: what
// enumerateRPsGetNextRP or enumerateCredentialsGetNextCredential returns
// next (CTAP 2.1 §6.8.3, §6.8.4). Any other command of the host that
// began it ends it (see hostState).
type credEnum struct {
	rps   []string // RP IDs not yet returned
	creds [][]byte // IDs of credentials not yet returned
}

// credentialManagement follows CTAP 2.1 §6.8 for command 0x0A and for
// the prototype command 0x41 of FIDO_2_1_PRE keys, which takes the same
// messages. A CTAP 2.0 key's tokens predate permissions, so there any
// token from getPinToken will do.
//
// An enumeration belongs to the host that began it (see hostState).
func (k *Key) credentialManagement(host hid.Origin, params []byte) []byte {
	r, err := ctap.DecodeCredMgmtRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	defer k.dropIdleHost(host)
	switch r.SubCommand {
	case ctap.CredMgmtEnumerateRPsGetNextRP:
		return k.nextRP(k.hosts[host])
	case ctap.CredMgmtEnumerateCredentialsGetNextCredential:
		return k.nextCredential(k.hosts[host])
	}
	// Any other subcommand ends an enumeration.
	if h := k.hosts[host]; h != nil {
		h.enum = nil
	}
	unbound := false
	switch r.SubCommand {
	case ctap.CredMgmtGetCredsMetadata, ctap.CredMgmtEnumerateRPsBegin:
		// §6.8.2, §6.8.3: these see every RP, so a token bound to one
		// will not do.
		unbound = true
	case ctap.CredMgmtEnumerateCredentialsBegin, ctap.CredMgmtDeleteCredential, ctap.CredMgmtUpdateUserInformation:
	default:
		return statusOnly(ctap.StatusInvalidSubcommand)
	}
	if r.PinUvAuthParam == nil {
		return statusOnly(ctap.StatusPUATRequired)
	}
	if s := k.checkPinUvParam(r.PinUvAuthProtocol); s != ctap.StatusOK {
		return statusOnly(s)
	}
	check := tokenCheck{perm: pinuv.PermCredentialManagement, unbound: unbound}
	if r.SubCommand == ctap.CredMgmtEnumerateCredentialsBegin {
		check.rpIDHash = r.Params.RPIDHash
	}
	if s := k.checkToken(r.PinUvAuthProtocol, r.AuthMessage(), r.PinUvAuthParam, check); s != ctap.StatusOK {
		return statusOnly(s)
	}
	switch r.SubCommand {
	case ctap.CredMgmtGetCredsMetadata:
		n := uint64(len(k.st.Credentials))
		left := uint64(max(k.cfg.ResidentKeySlots-len(k.st.Credentials), 0))
		return ctap.EncodeResponse(&ctap.CredMgmtResponse{
			ExistingResidentCredentialsCount: &n, MaxPossibleRemainingResidentCredentialsCount: &left,
		})
	case ctap.CredMgmtEnumerateRPsBegin:
		var rps []string
		for _, c := range k.st.Credentials {
			if !slices.Contains(rps, c.RPID) {
				rps = append(rps, c.RPID)
			}
		}
		if len(rps) == 0 {
			return statusOnly(ctap.StatusNoCredentials)
		}
		k.host(host).enum = &credEnum{rps: rps[1:]}
		resp := k.rpResponse(rps[0])
		resp.TotalRPs = uint64(len(rps))
		return ctap.EncodeResponse(resp)
	case ctap.CredMgmtEnumerateCredentialsBegin:
		var ids [][]byte
		for _, c := range k.st.Credentials {
			if equalHash(c.RPID, r.Params.RPIDHash) {
				ids = append(ids, c.ID)
			}
		}
		if len(ids) == 0 {
			return statusOnly(ctap.StatusNoCredentials)
		}
		k.host(host).enum = &credEnum{creds: ids[1:]}
		resp, s := k.credentialResponse(ids[0])
		if s != ctap.StatusOK {
			return statusOnly(s)
		}
		resp.TotalCredentials = uint64(len(ids))
		return ctap.EncodeResponse(resp)
	}
	// deleteCredential (§6.8.5) and updateUserInformation (§6.8.6).
	i := slices.IndexFunc(k.st.Credentials, func(c residentCredential) bool {
		return bytes.Equal(c.ID, r.Params.CredentialID.ID)
	})
	if i < 0 || r.Params.CredentialID.Type != "public-key" {
		return statusOnly(ctap.StatusNoCredentials)
	}
	if rp := k.auth.tok.rpID; rp != "" && rp != k.st.Credentials[i].RPID && !k.v20() {
		return statusOnly(ctap.StatusPINAuthInvalid) // a token bound to another RP
	}
	old := *k.st
	old.Credentials = slices.Clone(k.st.Credentials)
	if r.SubCommand == ctap.CredMgmtDeleteCredential {
		k.st.Credentials = slices.Delete(slices.Clone(k.st.Credentials), i, i+1)
	} else {
		u := r.Params.User
		c := &k.st.Credentials[i]
		if !bytes.Equal(u.ID, c.UserID) {
			return statusOnly(ctap.StatusInvalidParameter) // §6.8.6: the user handle cannot change
		}
		// Fields left out are removed, as the platform sends the whole
		// new user entity.
		c.UserName, c.UserDisplayName = u.Name, u.DisplayName
	}
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	return statusOnly(ctap.StatusOK)
}

// nextRP follows enumerateRPsGetNextRP (§6.8.3) for host h, nil if it has
// no state. The caller holds k.mu.
func (k *Key) nextRP(h *hostState) []byte {
	for h != nil && h.enum != nil && len(h.enum.rps) > 0 {
		rp := h.enum.rps[0]
		h.enum.rps = h.enum.rps[1:]
		// Another host may have deleted the RP's last credential since.
		if slices.ContainsFunc(k.st.Credentials, func(c residentCredential) bool { return c.RPID == rp }) {
			return ctap.EncodeResponse(k.rpResponse(rp))
		}
	}
	if h != nil {
		h.enum = nil
	}
	return statusOnly(ctap.StatusNotAllowed)
}

// nextCredential follows enumerateCredentialsGetNextCredential (§6.8.4)
// for host h, nil if it has no state. The caller holds k.mu.
func (k *Key) nextCredential(h *hostState) []byte {
	for h != nil && h.enum != nil && len(h.enum.creds) > 0 {
		id := h.enum.creds[0]
		h.enum.creds = h.enum.creds[1:]
		resp, s := k.credentialResponse(id)
		if s == ctap.StatusNoCredentials {
			continue // deleted by another host since
		}
		if s != ctap.StatusOK {
			return statusOnly(s)
		}
		return ctap.EncodeResponse(resp)
	}
	if h != nil {
		h.enum = nil
	}
	return statusOnly(ctap.StatusNotAllowed)
}

// rpResponse describes one RP: its ID, the name it gave with its newest
// credential, and the ID's hash. The caller holds k.mu.
func (k *Key) rpResponse(rpID string) *ctap.CredMgmtResponse {
	rp := &ctap.RPEntity{ID: rpID}
	for _, c := range k.st.Credentials {
		if c.RPID == rpID && c.RPName != "" {
			rp.Name = c.RPName
		}
	}
	h := sha256.Sum256([]byte(rpID))
	return &ctap.CredMgmtResponse{RP: rp, RPIDHash: h[:]}
}

// credentialResponse describes one discoverable credential (§6.8.4). The
// caller holds k.mu.
func (k *Key) credentialResponse(id []byte) (*ctap.CredMgmtResponse, ctap.Status) {
	i := slices.IndexFunc(k.st.Credentials, func(c residentCredential) bool { return bytes.Equal(c.ID, id) })
	if i < 0 {
		return nil, ctap.StatusNoCredentials // deleted since the enumeration began
	}
	c := &k.st.Credentials[i]
	signer, err := k.signers.get(c.Alg, c.PrivateKey)
	if err != nil {
		return nil, ctap.StatusOther
	}
	pub, err := ctap.MarshalPublicKey(signer.Public())
	if err != nil {
		return nil, ctap.StatusOther
	}
	return &ctap.CredMgmtResponse{
		User:         &ctap.UserEntity{ID: c.UserID, Name: c.UserName, DisplayName: c.UserDisplayName},
		CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: c.ID},
		PublicKey:    pub,
		CredProtect:  uint64(c.protect()),
		LargeBlobKey: c.LargeBlobKey,
	}, ctap.StatusOK
}
