// pages.js wires the demo's pages to fidokit.js and to the JSON API of
// package mfa (mounted at /mfa/), security keys included. Each page's
// <main> names the page in data-page; every button and form it uses is
// found by ID or class. Errors go to #page-error, news to #page-status,
// as sentences: never a raw error string.

import { FidoError, registerKey, verifyKey, request, postJSON } from "./fidokit.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const main = $("main");

function say(text, isError = true) {
  const err = $("#page-error");
  const status = $("#page-status");
  if (err) err.textContent = isError ? text : "";
  if (status) status.textContent = isError ? "" : text;
}

// where sends the person where a refusal says they must go first.
const where = {
  unauthenticated: () => "/signin",
  mfa_required: () => "/signin/verify?next=" + encodeURIComponent(location.pathname + location.search),
  mfa_stale: () => "/signin/verify?next=" + encodeURIComponent(location.pathname + location.search),
  mfa_enrollment_required: () => "/security/assign?required=1",
  mfa_security_key_required: () => "/security/assign?required=1&type=security_key",
};

function fail(e) {
  if (e instanceof FidoError) {
    say(e.message);
    if (where[e.code] && !["verify", "assign"].includes(main.dataset.page)) location.assign(where[e.code]());
    return;
  }
  say("Something went wrong on this page. Reload it and try again.");
}

// busy disables a button while work runs, so a second click does not start a second request.
async function busy(button, work) {
  if (button) button.disabled = true;
  try {
    await work();
  } catch (e) {
    fail(e);
  } finally {
    if (button) button.disabled = false;
  }
}

function onSubmit(form, work) {
  if (!form) return;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(form.querySelector("button[type=submit]"), () => work(new FormData(form)));
  });
}

function onClick(el, work) {
  if (el) el.addEventListener("click", () => busy(el, work));
}

// next is where a finished step goes: a path on this site only.
function next() {
  const n = main.dataset.next || "/";
  return n.startsWith("/") && !n.startsWith("//") && !n.startsWith("/\\") ? n : "/";
}

// ---- recovery codes, shown once ----

function showRecoveryCodes(codes) {
  const panel = $("#recovery-panel");
  const list = $("#recovery-codes");
  list.replaceChildren(
    ...codes.map((c) => {
      const li = document.createElement("li");
      li.textContent = c;
      return li;
    }),
  );
  const text =
    "fidokit demo recovery codes for " + (main.dataset.account || "your account") + "\n" +
    "Each code works once. Keep them somewhere safe.\n\n" + codes.join("\n") + "\n";
  const link = $("#recovery-download");
  link.href = "data:text/plain;charset=utf-8," + encodeURIComponent(text);
  for (const p of $$("section.panel")) p.hidden = p !== panel;
  panel.hidden = false;
  panel.scrollIntoView();
}

// ---- the second-factor step ----

function verifyPage() {
  const go = () => location.assign(next());
  onClick($("#use-key"), async () => {
    say("Touch your security key…", false);
    await verifyKey({ begin: "/mfa/verify/key/begin", finish: "/mfa/verify/key/finish" });
    go();
  });
  onSubmit($("#totp-form"), async (data) => {
    await postJSON("/mfa/verify/totp", { code: data.get("code") });
    go();
  });
  onSubmit($("#recovery-form"), async (data) => {
    await postJSON("/mfa/verify/recovery-code", { code: data.get("code") }, {
      code_reused: "That recovery code has already been used. Each code works once: use another one.",
      invalid_code: "That recovery code is not right. Check what you typed and try again.",
    });
    go();
  });
}

// ---- assign an MFA device ----

async function afterFirstDevice() {
  // The first device gets the account its recovery codes, shown once.
  const { left } = await request("GET", "/mfa/recovery-codes");
  if (left > 0) {
    location.assign("/security?added=1");
    return;
  }
  const set = await postJSON("/mfa/recovery-codes");
  say("The device is assigned. Save your recovery codes now: they are shown only once.", false);
  showRecoveryCodes(set.codes);
}

function assignPage() {
  let enrollment = null;
  const show = (id) => {
    for (const p of $$("section.panel")) p.hidden = p.id !== id;
  };
  onSubmit($("#assign-start"), async (data) => {
    const name = (data.get("name") || "").trim();
    const type = data.get("type");
    if (!name) throw new FidoError("name_required", "Give the device a name, such as \u201cBlue key\u201d or \u201cPhone\u201d.");
    if (!type) throw new FidoError("type_required", "Choose the type of device.");
    say("", false);
    $("#assign-start").hidden = true;
    if (type === "security_key") {
      show("key-panel");
    } else if (type === "authenticator_app") {
      const { enrollment: e } = await postJSON("/mfa/totp/begin", { name });
      enrollment = e;
      $("#qr").src = e.qr;
      $("#secret-key").textContent = e.secret;
      show("app-panel");
      $("#app-code1").focus();
    } else {
      show("token-panel");
    }
  });
  onClick($("#register-key"), async () => {
    say("Touch your security key…", false);
    await registerKey({ begin: "/mfa/keys/begin", finish: "/mfa/keys/finish", body: { name: $("#device-name").value.trim() } });
    await afterFirstDevice();
  });
  onClick($("#show-secret"), async () => {
    $("#secret-key").hidden = false;
    $("#show-secret").hidden = true;
  });
  const finish = async (code1, code2) => {
    await postJSON("/mfa/totp/finish", { id: enrollment.id, code1, code2 });
    await afterFirstDevice();
  };
  onSubmit($("#app-finish"), (data) => finish(data.get("code1"), data.get("code2")));
  onSubmit($("#token-begin"), async (data) => {
    const body = { name: $("#device-name").value.trim(), serial: (data.get("serial") || "").trim() };
    const file = data.get("seedFile");
    if (file && file.size > 0) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      let bin = "";
      for (const b of bytes) bin += String.fromCharCode(b);
      body.seedFile = btoa(bin);
      if (data.get("preSharedKey")) body.preSharedKey = data.get("preSharedKey").trim();
      if (data.get("password")) body.password = data.get("password");
    } else if (data.get("secret")) {
      body.secret = data.get("secret").replace(/\s+/g, "");
    } else {
      throw new FidoError("seed_required", "Choose the token's seed file, or type its secret.");
    }
    const { enrollment: e } = await postJSON("/mfa/token/begin", body);
    enrollment = e;
    $("#token-begin").hidden = true;
    $("#token-finish").hidden = false;
    $("#token-code1").focus();
  });
  onSubmit($("#token-finish"), (data) => finish(data.get("code1"), data.get("code2")));
}

// ---- security credentials: the device list ----

function securityPage() {
  for (const row of $$("tr.device")) {
    const id = row.dataset.id;
    const result = $(".result", row);
    const url = "/mfa/devices/" + encodeURIComponent(id);
    onClick($(".rename", row), async () => {
      $(".rename-form", row).hidden = false;
      $(".rename-form input", row).focus();
    });
    onSubmit($(".rename-form", row), async (data) => {
      await postJSON(url + "/rename", { name: (data.get("name") || "").trim() });
      location.assign("/security?renamed=1");
    });
    const removeButton = $(".remove", row);
    onClick(removeButton, async () => {
      if (removeButton.dataset.armed !== "1") {
        removeButton.dataset.armed = "1";
        removeButton.textContent = "Confirm remove";
        return;
      }
      await request("DELETE", url);
      location.assign("/security?removed=1");
    });
    const passed = (v) => {
      const same = v.verification.deviceId === id;
      result.textContent = same ? "Test sign-in passed." : "Signed in, but with another device.";
      if (same) $(".last-used", row).textContent = "just now";
    };
    onClick($(".test", row), async () => {
      result.textContent = "";
      if (row.dataset.type === "security_key") {
        say("Touch your security key…", false);
        passed(await verifyKey({ begin: "/mfa/verify/key/begin", finish: "/mfa/verify/key/finish" }));
        say("", false);
      } else {
        $(".test-form", row).hidden = false;
        $(".test-form input", row).focus();
      }
    });
    onSubmit($(".test-form", row), async (data) => {
      passed(await postJSON("/mfa/verify/totp", { code: data.get("code") }));
      $(".test-form", row).hidden = true;
    });
  }
  const regen = $("#new-recovery-codes");
  onClick(regen, async () => {
    if (regen.dataset.armed !== "1") {
      regen.dataset.armed = "1";
      regen.textContent = "Replace every code: confirm";
      say("New codes replace every old one, used or not.", false);
      return;
    }
    const set = await postJSON("/mfa/recovery-codes");
    say("Save your new recovery codes now: they are shown only once.", false);
    showRecoveryCodes(set.codes);
  });
}

// ---- administrator: one account's devices ----

function adminUserPage() {
  const user = main.dataset.user;
  for (const row of $$("tr.device")) {
    const base = "/mfa/users/" + encodeURIComponent(user) + "/devices/" + encodeURIComponent(row.dataset.id);
    onClick($(".deactivate", row), async () => {
      await postJSON(base + "/deactivate");
      location.assign(location.pathname + "?changed=deactivated");
    });
    onClick($(".reactivate", row), async () => {
      await postJSON(base + "/reactivate");
      location.assign(location.pathname + "?changed=reactivated");
    });
  }
}

({ verify: verifyPage, assign: assignPage, security: securityPage, "admin-user": adminUserPage })[main.dataset.page]?.();
// Tests wait for this before they click.
document.documentElement.dataset.ready = "true";
