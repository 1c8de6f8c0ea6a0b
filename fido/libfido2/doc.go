// Package libfido2 reaches security keys through Yubico's libfido2, the C
// library behind OpenSSH's FIDO support and the fido2-tools, by way of
// github.com/keys-pub/go-libfido2. Its [Device] implements
// [fido.Authenticator], so code written against that interface (the
// [fido.WebAuthnClient], the examples, the conformance suite in
// github.com/fidokit/fidokit/fido/fidotest) runs on it unchanged:
//
//	keys, err := libfido2.Devices(ctx)
//	dev, err := libfido2.Open(ctx, keys[0].Path)
//	defer dev.Close()
//	att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{...})
//
// Package [fido] needs no C and is the default; use this one where
// libfido2 is the platform's way to keys (macOS, Windows, the BSDs) or to
// compare fidokit with libfido2.
//
// # Building
//
// This is the only fidokit package that uses cgo. It links libfido2
// found through pkg-config (Debian: apt-get install libfido2-dev
// pkg-config; macOS: brew install libfido2). Built with CGO_ENABLED=0 it
// still compiles, and every function returns an error matching
// [ErrNeedsCgo] and [fido.ErrUnsupportedPlatform].
//
// # Virtual keys
//
// libfido2 opens hidraw nodes, not sockets. A fidokit virtual key serving
// on a socket (virtual.Key.Listen) is reached through the LD_PRELOAD shim
// that github.com/fidokit/fidokit/internal/hid/preload builds: start the
// program with LD_PRELOAD naming the shim and pass the socket's path to
// [Open]. [Devices] lists only what libfido2 finds through udev, never
// sockets.
//
// # Errors
//
// libfido2's FIDO_ERR_* codes come back as the same values package fido
// returns: CTAP status codes as [fido.Status] (errors.Is(err,
// fido.StatusPINInvalid), errors.Is(err, fido.StatusCredentialExcluded)),
// transmission failures as [fido.ErrDeviceGone], malformed responses as
// [*fido.ResponseError], a cancelled context as context.Canceled (joined
// with the key's CTAP2_ERR_KEEPALIVE_CANCEL). Cancelling the context sends
// CTAPHID_CANCEL through go-libfido2's Device.Cancel, so a key waiting for
// a touch stops waiting.
//
// # What go-libfido2 cannot do
//
// go-libfido2 (v1.5.3) wraps only part of libfido2, so this backend
// differs from [fido.Device] where it has no call:
//
//   - MakeCredential: no exclude list in go-libfido2. The backend probes
//     the key silently for the excluded IDs (a getAssertion with up=false,
//     as browsers do for long lists) and returns
//     fido.StatusCredentialExcluded when it holds one, without the touch a
//     CTAP makeCredential would wait for first.
//   - MakeCredential: one algorithm per request. The backend tries
//     req.Algorithms in order while the key answers
//     CTAP2_ERR_UNSUPPORTED_ALGORITHM. go-libfido2 also requires a user
//     name: an empty User.Name is refused with an error wrapping
//     fido.ErrNotSupported.
//   - MakeCredential: go-libfido2 returns the attestation signature and the
//     first certificate, not the statement. The backend rebuilds the
//     statement for the "packed", "fido-u2f" and "none" formats (a packed
//     statement's "alg" is that of the certificate's key, or the
//     credential's for self attestation); for other formats
//     Attestation.Statement is nil. Only the first certificate of a chain
//     survives.
//   - GetAssertion: only the first assertion. Without an allow list a key
//     holding several discoverable credentials for the RP returns one
//     assertion, not all of them; the user of a discoverable credential
//     has its ID but no Name or DisplayName.
//   - Info: go-libfido2 reports versions, extensions, AAGUID, options and
//     PIN/UV auth protocols only. MaxMsgSize, MaxCredentialCountInList,
//     MaxCredentialIDLength, Transports, FirmwareVersion and MinPINLength
//     are zero, Algorithms is nil and RemainingDiscoverableCredentials is
//     -1 (unknown).
//   - PINRetries: go-libfido2 reports the count only, so the
//     power-cycle-required result is always false.
//   - Prompt.Touch: libfido2 does not pass KEEPALIVE on, so Touch is
//     called when a request that waits for a touch is sent, not when the
//     key starts waiting.
//   - Every call opens the key anew (CTAPHID INIT and getInfo first), as
//     go-libfido2 does; libfido2 itself sets no timeout, so only the
//     context (through CANCEL) ends a wait.
//   - Extensions: hmac-secret (one or two salts) and credProtect only;
//     asking for credBlob, minPinLength or largeBlobKey gives an error
//     wrapping fido.ErrNotSupported.
//   - PIN: [Device] implements [fido.PINManager] and
//     [fido.CredentialManager], asking for the PIN through Prompt.PIN as
//     [fido.Device] does. Credential management always uses the PIN (never
//     built-in user verification), and Credentials reports each
//     credential's ID, user and algorithm but not its PublicKey,
//     CredProtect or LargeBlobKey.
//   - go-libfido2 hands PINs to libfido2 as C strings it never frees or
//     clears, so a PIN stays in C memory after the call; fido.Device
//     zeroes its copies.
//   - Not available at all, returning an error wrapping
//     fido.ErrNotSupported that names the operation: Wink, Selection,
//     UVRetries, UpdateUser, and the authenticatorConfig and largeBlobs
//     commands.
package libfido2
