// fidokit.js: security keys in the browser, for a fidokit relying party.
//
// Copy this file into your app; it needs no build step and no library.
// It runs the two WebAuthn ceremonies against JSON endpoints in the style
// of fidokit's handlers (package webauthn's Handler, package mfa's
// /keys/ and /verify/key/ routes, or your own):
//
//   1. POST the begin endpoint; the answer is {"challengeId": id,
//      "publicKey": options} (fidokit's handlers bind the ID to this
//      browser, so that several tabs can each run a ceremony; a server
//      that keeps it in a cookie instead may leave challengeId out);
//   2. turn the options JSON into what navigator.credentials wants:
//      PublicKeyCredential.parseCreationOptionsFromJSON /
//      parseRequestOptionsFromJSON where the browser has them, base64url by
//      hand where it does not;
//   3. ask the browser (the person touches the key);
//   4. POST the finish endpoint {"credential": credential.toJSON(), ...},
//      with the challengeId back if there was one, and whatever fields the
//      caller adds: the key's name is "keyName" for package webauthn's
//      /register/finish, "name" for package mfa's /keys/finish (there it
//      names the device).
//
// Every failure is a FidoError whose code is stable and whose message is
// a sentence to show the person: the server's error codes
// ({"error": {"code", "message"}}), and the browser's DOMException names
// (NotAllowedError, InvalidStateError, ...) mapped to what the person can
// do about them. A new ceremony aborts the one before it, so a second
// click does not leave two waiting.
//
//   import { registerKey, verifyKey, FidoError } from "./fidokit.js";
//   try {
//     const { device } = await registerKey({ begin: "/mfa/keys/begin", finish: "/mfa/keys/finish", body: { name: "Blue key" } });
//   } catch (e) {
//     show(e.message); // e.code: "credential_exists", "not_allowed", ...
//   }

/** FidoError is a failed request or ceremony: code is stable, message is for people. */
export class FidoError extends Error {
  constructor(code, message, status = 0, details = {}) {
    super(message);
    this.name = "FidoError";
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/**
 * messages maps stable codes to what the page tells the person. Server
 * codes come from fidokit's webauthn and mfa handlers; the lower ones are
 * the browser's. Change them, or pass overrides to messageFor.
 */
export const messages = {
  // Second factors and enrollment (package mfa).
  invalid_code: "That code is not right. Check the device and try again.",
  malformed_code: "That does not look like a code. Check what you typed and try again.",
  code_reused: "That code has already been used — wait for the next one.",
  not_consecutive: "Those two codes do not follow each other. Enter two codes the device shows one after the other.",
  locked: "Too many wrong codes. Try again later.",
  enrollment_unknown: "This setup is unknown or already finished. Start again.",
  enrollment_expired: "This setup took too long and has expired. Start again.",
  not_enrolled: "This account has no active device of this kind.",
  no_recovery_codes: "This account has no recovery codes left.",
  device_limit: "This account already has as many devices as allowed. Remove one first.",
  device_unknown: "There is no such device on this account.",
  device_deactivated: "This device is deactivated.",
  serial_taken: "A token with this serial number is already assigned.",
  serial_not_found: "The seed file has no token with this serial number.",
  invalid_secret: "That secret is not valid. Type the secret from the token's card as it is printed.",
  seed_file_malformed: "The seed file cannot be read.",
  seed_file_key_required: "The seed file is encrypted. Give its key or password.",
  seed_file_mac: "The seed file's key or password is wrong, or the file was altered.",
  seed_file_wrong_key: "The seed file does not decrypt with this key or password.",
  // Security keys (package webauthn).
  challenge_unknown: "This security key request is unknown or was already used. Start again.",
  challenge_expired: "The security key took too long. Start again.",
  no_credentials: "This account has no active security key. If yours was deactivated, use another device or a recovery code.",
  credential_unknown: "That security key is not registered to this account.",
  credential_deactivated: "That security key was deactivated. Use another device or a recovery code.",
  credential_wrong_user: "That security key belongs to another account.",
  credential_exists: "That security key is already registered.",
  signed_in: "You are signed in: sign out to create another account, or add the key to this one.",
  sign_count_regression: "This security key was refused: it may have been copied. Tell your administrator.",
  user_presence_missing: "The security key was not touched. Try again.",
  user_verification_missing: "The security key did not check your PIN or fingerprint. Try again.",
  too_many_ceremonies: "Too many security key requests are under way. Try again in a few minutes.",
  // Require-MFA refusals (mfa.Manager.Require).
  mfa_required: "Confirm it's you with your security key, authenticator app or a recovery code.",
  mfa_enrollment_required: "Set up an MFA device to continue.",
  mfa_security_key_required: "Administrators must register a security key to continue.",
  // Requests.
  unauthenticated: "Your session has ended. Sign in again.",
  forbidden: "You are not allowed to do this.",
  cross_origin: "Requests from other sites are not allowed.",
  internal: "Something went wrong on our side. Try again.",
  network: "The server cannot be reached. Check your connection and try again.",
  // The browser (DOMException names, and no WebAuthn at all).
  unsupported: "This browser cannot use security keys. Try a current Chrome, Edge, Firefox or Safari.",
  not_allowed: "The security key request was cancelled or timed out, or this key is not registered here. Try again.",
  invalid_state: "This security key is already registered to your account. Use another key.",
  aborted: "The security key request was cancelled.",
  security: "This page's address does not match the site's security key settings.",
  not_supported: "This security key cannot do what this site asks.",
  constraint: "This security key cannot check a PIN or fingerprint, which this site asks for.",
  key_failed: "The security key could not be used. Try again.",
};

/** messageFor returns the sentence for code: overrides, then messages, then the server's own, then a generic one. */
export function messageFor(code, fallback, overrides = {}) {
  return overrides[code] || messages[code] || fallback || messages.internal;
}

/**
 * request sends a JSON request to the app and returns the JSON answer (or
 * null for 204). A failure throws a FidoError with the server's code.
 */
export async function request(method, url, body, overrides = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET" && method !== "HEAD") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new FidoError("network", messageFor("network", "", overrides));
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = (data && data.error) || {};
    const code = err.code || "http_" + res.status;
    let message = messageFor(code, err.message, overrides);
    if (code === "locked" && err.until && !overrides.locked) {
      message = "Too many wrong codes. Try again after " + new Date(err.until).toLocaleTimeString() + ".";
    }
    throw new FidoError(code, message, res.status, err);
  }
  return data;
}

/** postJSON is request("POST", ...). */
export const postJSON = (url, body, overrides) => request("POST", url, body, overrides);

// ---- base64url, for browsers without the JSON methods ----

function fromB64url(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const withIDs = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

/** creationOptions turns PublicKeyCredentialCreationOptionsJSON into options for create(). */
export function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromB64url(json.challenge),
    user: { ...json.user, id: fromB64url(json.user.id) },
    excludeCredentials: withIDs(json.excludeCredentials),
  };
}

/** requestOptions turns PublicKeyCredentialRequestOptionsJSON into options for get(). */
export function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return { ...json, challenge: fromB64url(json.challenge), allowCredentials: withIDs(json.allowCredentials) };
}

/** credentialJSON is credential.toJSON(), by hand where the browser lacks it. */
export function credentialJSON(cred) {
  if (typeof cred.toJSON === "function") return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response,
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}

// ---- the ceremonies ----

let pending = null;

/** abort cancels the ceremony under way, if any. */
export function abort() {
  if (pending) pending.abort();
  pending = null;
}

// browserError maps a DOMException from create() or get() to a FidoError.
function browserError(e) {
  const code =
    {
      NotAllowedError: "not_allowed",
      InvalidStateError: "invalid_state",
      AbortError: "aborted",
      SecurityError: "security",
      NotSupportedError: "not_supported",
      ConstraintError: "constraint",
    }[e && e.name] || "key_failed";
  return new FidoError(code, messageFor(code));
}

async function ceremony(kind, { begin, finish, beginBody = {}, body = {}, overrides = {} }) {
  if (typeof window.PublicKeyCredential !== "function") {
    throw new FidoError("unsupported", messageFor("unsupported", "", overrides));
  }
  abort();
  const controller = new AbortController();
  pending = controller;
  try {
    const started = await postJSON(begin, beginBody, overrides);
    let cred;
    try {
      cred =
        kind === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(started.publicKey), signal: controller.signal })
          : await navigator.credentials.get({ publicKey: requestOptions(started.publicKey), signal: controller.signal });
    } catch (e) {
      throw browserError(e);
    }
    const out = { ...body, credential: credentialJSON(cred) };
    if (started.challengeId) out.challengeId = started.challengeId;
    return await postJSON(finish, out, overrides);
  } finally {
    if (pending === controller) pending = null;
  }
}

/**
 * registerKey registers a security key: begin, create(), finish. Options:
 * begin and finish (URLs), beginBody (the begin request, {} by default),
 * body (fields added to the finish request, such as the key's name) and
 * overrides (messages by code). It returns the finish answer.
 */
export const registerKey = (opts) => ceremony("create", opts);

/** verifyKey signs in with a security key: begin, get(), finish, with registerKey's options. It returns the finish answer. */
export const verifyKey = (opts) => ceremony("get", opts);
