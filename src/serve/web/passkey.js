// t-minus passkeys: enrolment, sign-in, sign-out and answers signed by a
// passkey, over the standard WebAuthn API (navigator.credentials) with
// binary values in base64url. Served from the binary at /assets/passkey.js.
//
//   window.tMinusPasskey.enrol(token)            -> Promise<{agent, credential, csrf}>
//   window.tMinusPasskey.signIn()                -> Promise<{agent, credential, csrf}>
//   window.tMinusPasskey.signOut()               -> Promise<{signed_out: true}>
//   window.tMinusPasskey.answer(eventRef, {answer: "confirm"|"defer"|"decline", duration, reason})
//                                                -> Promise<event JSON, as GET /v1/events/{event}>
//
// A refusal rejects with an Error whose message is the service's, with
// `code` (t_minus::…), `status` and `help`.
(function () {
  "use strict";

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  var csrfToken = null;

  function csrf() {
    if (csrfToken) return csrfToken;
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function remember(reply) {
    if (reply && reply.csrf) {
      csrfToken = reply.csrf;
      var meta = document.querySelector('meta[name="csrf-token"]');
      if (meta) meta.setAttribute("content", reply.csrf);
    }
    return reply;
  }

  async function post(path, body, withCsrf) {
    var headers = { "Content-Type": "application/json" };
    if (withCsrf) headers["X-CSRF-Token"] = csrf();
    var response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {}),
    });
    var reply = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      var error = reply.error || {};
      var failure = new Error(error.message || response.statusText);
      failure.code = error.code;
      failure.help = error.help;
      failure.status = response.status;
      throw failure;
    }
    return reply;
  }

  function creationOptions(options) {
    var publicKey = Object.assign({}, options);
    publicKey.challenge = toBuffer(options.challenge);
    publicKey.user = Object.assign({}, options.user, { id: toBuffer(options.user.id) });
    publicKey.excludeCredentials = (options.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBuffer(c.id) });
    });
    return publicKey;
  }

  function requestOptions(options) {
    var publicKey = Object.assign({}, options);
    publicKey.challenge = toBuffer(options.challenge);
    publicKey.allowCredentials = (options.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBuffer(c.id) });
    });
    return publicKey;
  }

  function registrationJSON(credential) {
    return {
      id: credential.id,
      type: credential.type,
      response: {
        clientDataJSON: toText(credential.response.clientDataJSON),
        attestationObject: toText(credential.response.attestationObject),
      },
    };
  }

  function assertionJSON(credential) {
    var response = credential.response;
    return {
      id: toText(credential.rawId),
      response: {
        clientDataJSON: toText(response.clientDataJSON),
        authenticatorData: toText(response.authenticatorData),
        signature: toText(response.signature),
        userHandle: response.userHandle ? toText(response.userHandle) : null,
      },
    };
  }

  async function enrol(token) {
    var begun = await post("/web/enrol/begin", { token: token });
    var credential = await navigator.credentials.create({ publicKey: creationOptions(begun.publicKey) });
    return remember(await post("/web/enrol/finish", {
      ceremony: begun.ceremony,
      token: token,
      credential: registrationJSON(credential),
    }));
  }

  async function signIn() {
    var begun = await post("/web/signin/begin", {});
    var credential = await navigator.credentials.get({ publicKey: requestOptions(begun.publicKey) });
    return remember(await post("/web/signin/finish", {
      ceremony: begun.ceremony,
      credential: assertionJSON(credential),
    }));
  }

  async function signOut() {
    var reply = await post("/web/signout", {}, true);
    csrfToken = null;
    return reply;
  }

  async function answer(eventRef, choice) {
    choice = choice || {};
    var path = "/web/events/" + encodeURIComponent(eventRef) + "/answer/";
    var body = { answer: choice.answer };
    if (choice.duration) body.duration = choice.duration;
    if (choice.reason) body.reason = choice.reason;
    var begun = await post(path + "begin", body, true);
    var credential = await navigator.credentials.get({ publicKey: requestOptions(begun.publicKey) });
    return post(path + "finish", {
      ceremony: begun.ceremony,
      credential: assertionJSON(credential),
    }, true);
  }

  window.tMinusPasskey = { enrol: enrol, signIn: signIn, signOut: signOut, answer: answer };

  // The buttons of the enrolment and sign-in pages.
  function wire(selector, run, next) {
    var button = document.querySelector(selector);
    if (!button) return;
    var status = document.querySelector("[data-passkey-status]");
    button.addEventListener("click", function () {
      button.disabled = true;
      if (status) status.textContent = "Waiting for your passkey…";
      run().then(function () {
        if (status) status.textContent = "Done.";
        window.location.assign(next);
      }, function (error) {
        button.disabled = false;
        if (status) status.textContent = error.message + (error.help ? " " + error.help : "");
      });
    });
  }

  function start() {
    var token = decodeURIComponent(window.location.pathname.replace(/^\/enrol\//, ""));
    wire("[data-passkey-enrol]", function () { return enrol(token); }, "/");
    // Only a path of this site, never another host (`//host`, `/\host`).
    var next = new URLSearchParams(window.location.search).get("next") || "/";
    if (next.charAt(0) !== "/" || next.charAt(1) === "/" || next.charAt(1) === "\\") next = "/";
    wire("[data-passkey-signin]", signIn, next);
    wire("[data-passkey-signout]", signOut, "/signin");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
