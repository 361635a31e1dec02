// convex_auth: the one script of the gateway's pages that use passkeys
// (WebAuthn). It is served by the gateway itself (script-src 'self') and
// does only this: for each <form data-passkey="..." data-options="URL">,
// it asks the gateway for the ceremony's options (connect-src 'self'),
// runs navigator.credentials.get or .create, puts the answer in the form's
// "credential" field and submits the form. The gateway checks the answer.
// A <form data-passkey="signin" data-conditional> also offers passkeys in
// the autofill of its input with autocomplete="... webauthn".
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.querySelectorAll("[data-passkey-unsupported]").forEach(function (el) { el.hidden = false; });
    document.querySelectorAll("form[data-passkey] button").forEach(function (b) { b.disabled = true; });
    return;
  }
  document.documentElement.classList.add("passkeys");

  function decode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function encode(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: decode(c.id) }); });
  }
  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey, { challenge: decode(o.publicKey.challenge) });
    if (pk.allowCredentials) pk.allowCredentials = ids(pk.allowCredentials);
    return pk;
  }
  function creationOptions(o) {
    var pk = Object.assign({}, o.publicKey, { challenge: decode(o.publicKey.challenge) });
    pk.user = Object.assign({}, pk.user, { id: decode(pk.user.id) });
    if (pk.excludeCredentials) pk.excludeCredentials = ids(pk.excludeCredentials);
    return pk;
  }
  function answer(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: encode(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      if (r.userHandle) out.response.userHandle = encode(r.userHandle);
    }
    return JSON.stringify(out);
  }
  function fields(form) {
    var body = new URLSearchParams();
    form.querySelectorAll("input[data-passkey-field]").forEach(function (i) { body.set(i.name, i.value); });
    return body;
  }
  async function options(form, extra) {
    var body = fields(form);
    if (extra) body.set(extra, "1");
    var res = await fetch(form.dataset.options, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" }, body: body,
    });
    var data = await res.json().catch(function () { return {}; });
    if (!res.ok) throw new Error(data.message || "The passkey could not be started. Please try again.");
    return data;
  }
  function show(form, msg) {
    var el = form.querySelector("[data-passkey-error]");
    if (el) { el.textContent = msg; el.hidden = !msg; }
  }
  function submit(form, cred) {
    form.querySelector("input[name=credential]").value = answer(cred);
    form.submit();
  }

  var conditional = null;
  async function run(form) {
    show(form, "");
    if (conditional) conditional.abort();
    try {
      var kind = form.dataset.passkey, o = await options(form);
      var cred = kind === "register"
        ? await navigator.credentials.create({ publicKey: creationOptions(o) })
        : await navigator.credentials.get({ publicKey: requestOptions(o) });
      if (cred) submit(form, cred);
    } catch (e) {
      show(form, e && e.name === "NotAllowedError"
        ? "The passkey was not used. Try again, or choose another way."
        : (e && e.message) || "The passkey did not work. Try again, or choose another way.");
    }
  }
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (form.querySelector("input[name=credential]").value) return;
      ev.preventDefault();
      run(form);
    });
  });

  var auto = document.querySelector("form[data-passkey=signin][data-conditional]");
  if (auto && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(async function (ok) {
      if (!ok) return;
      conditional = new AbortController();
      try {
        var o = await options(auto, "conditional");
        var cred = await navigator.credentials.get({ mediation: "conditional", publicKey: requestOptions(o), signal: conditional.signal });
        if (cred) submit(auto, cred);
      } catch (e) { /* aborted for a button press, or dismissed */ }
    });
  }
})();
