package fido

import (
	"encoding/base64"
	"encoding/json"
)

// The response JSON of a ceremony is written by hand: its members are
// base64url strings and constants, which need no escaping, so it is
// appended in one pass, each binary value encoded straight into the
// output. encoding/json would have each one encoded into a string first
// and then scanned again for escapes, and had most of what a ceremony
// spends on JSON. The parts that may need escaping (transports, extension
// results) still go through encoding/json; TestResponseJSON and
// FuzzResponseJSON hold the whole to json.Marshal of the structs below.

// appendB64Member appends ,"name":"<base64url of b>" (without the comma
// when first).
func appendB64Member(dst []byte, name string, b []byte, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":"`...)
	dst = base64.RawURLEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendJSON appends v as json.Marshal gives it.
func appendJSON(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// appendExtensionResults appends clientExtensionResults: json.Marshal's
// null for nil, {} for empty, and json.Marshal's object otherwise.
func appendExtensionResults(dst []byte, ext map[string]any) ([]byte, error) {
	switch {
	case ext == nil:
		return append(dst, "null"...), nil
	case len(ext) == 0:
		return append(dst, "{}"...), nil
	}
	return appendJSON(dst, ext)
}

// registrationJSON is json.Marshal of the registrationResponseJSON that
// registrationResponse describes; publicKey nil leaves that member out.
func registrationJSON(credID, cdj, authData []byte, transports []string, publicKey []byte,
	alg int64, attObj []byte, ext map[string]any) ([]byte, error) {
	n := base64.RawURLEncoding.EncodedLen
	dst := make([]byte, 0, 256+2*n(len(credID))+n(len(cdj))+n(len(authData))+n(len(publicKey))+n(len(attObj)))
	dst = appendB64Member(append(dst, '{'), "id", credID, true)
	dst = appendB64Member(dst, "rawId", credID, false)
	dst = appendB64Member(append(dst, `,"response":{`...), "clientDataJSON", cdj, true)
	dst = appendB64Member(dst, "authenticatorData", authData, false)
	dst, err := appendJSON(append(dst, `,"transports":`...), transports)
	if err != nil {
		return nil, err
	}
	if len(publicKey) > 0 {
		dst = appendB64Member(dst, "publicKey", publicKey, false)
	}
	dst = append(dst, `,"publicKeyAlgorithm":`...)
	dst, _ = appendJSON(dst, alg) // an int64 always marshals
	dst = appendB64Member(dst, "attestationObject", attObj, false)
	dst = append(dst, `},"authenticatorAttachment":"cross-platform","clientExtensionResults":`...)
	if dst, err = appendExtensionResults(dst, ext); err != nil {
		return nil, err
	}
	return append(dst, `,"type":"public-key"}`...), nil
}

// authenticationJSON is json.Marshal of the authenticationResponseJSON
// that authenticationResponse describes; an empty userHandle is left out.
func authenticationJSON(credID, cdj, authData, sig, userHandle []byte, ext map[string]any) ([]byte, error) {
	n := base64.RawURLEncoding.EncodedLen
	dst := make([]byte, 0, 200+2*n(len(credID))+n(len(cdj))+n(len(authData))+n(len(sig))+n(len(userHandle)))
	dst = appendB64Member(append(dst, '{'), "id", credID, true)
	dst = appendB64Member(dst, "rawId", credID, false)
	dst = appendB64Member(append(dst, `,"response":{`...), "clientDataJSON", cdj, true)
	dst = appendB64Member(dst, "authenticatorData", authData, false)
	dst = appendB64Member(dst, "signature", sig, false)
	if len(userHandle) > 0 {
		dst = appendB64Member(dst, "userHandle", userHandle, false)
	}
	dst = append(dst, `},"authenticatorAttachment":"cross-platform","clientExtensionResults":`...)
	dst, err := appendExtensionResults(dst, ext)
	if err != nil {
		return nil, err
	}
	return append(dst, `,"type":"public-key"}`...), nil
}
