/* tcpcam web interface: the login form says why the last attempt failed. */
"use strict";

(function () {
  var query = new URLSearchParams(location.search);
  var reasons = {
    wrong: "Wrong password.",
    blocked: "Too many failed attempts from your address. Try again in %s s.",
    busy: "The recorder is busy checking other logins. Try again in a moment.",
    link: "That login link was used already or has expired. Log in with the password.",
    unset: "No password is set. Set one on the recorder's machine with: tcpcam password"
  };
  var failed = query.get("failed");
  var message = document.getElementById("message");
  if (failed && reasons[failed]) {
    message.textContent = reasons[failed].replace("%s", query.get("retry") || "60");
    message.hidden = false;
  }
  var next = query.get("next");
  if (next && next.charAt(0) === "/" && next.charAt(1) !== "/") document.getElementById("next").value = next;
  document.getElementById("password").focus();
})();
