/* tcpcam web interface: what every page behind the login shares. */
"use strict";

var tcpcam = (function () {
  /** Seconds without a frame after which a connected camera is shown as having no signal. */
  var STALE_S = 3;

  var ICONS = {
    down: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3.3 2 2 3.3 5.7 7H4a2 2 0 0 0-2 2v9a2 2 0 0 0 2 2h13.7l3 3' +
      ' 1.3-1.3zM20 7h-3.2L15 5H9L7.9 6.2 20 18.3A2 2 0 0 0 22 17V9a2 2 0 0 0-2-2z"/></svg>',
    wait: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2a10 10 0 1 0 10 10A10 10 0 0 0 12 2zm1 11h-5v-2h3V6h2z"/></svg>',
    off: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6h12v12H6z"/></svg>'
  };

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 1.5) return "just now";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function duration(seconds) {
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h";
    return Math.round(seconds / 86400) + " d";
  }

  /** What a protocol 2 camera says of itself, for a state line: heap, WiFi signal, uptime, frames lost ("" if none). */
  function healthText(c) {
    var h = c.health || {};
    var parts = [];
    if (typeof h.free_heap === "number") parts.push("heap " + Math.round(h.free_heap / 1024) + " KiB");
    if (typeof h.wifi_rssi === "number") parts.push("RSSI " + h.wifi_rssi + " dBm");
    if (typeof h.uptime_s === "number") parts.push("up " + duration(h.uptime_s));
    if (c.lost_frames) parts.push(c.lost_frames + " frames lost");
    return parts.join(" · ");
  }

  /** What to show for a camera's status: a kind (live, wait, down, off), a label and a detail line. */
  function describe(c) {
    var hasFrame = c.last_frame_age !== null;
    if (c.state === "connected") {
      if (!hasFrame) return {kind: "wait", label: "Waiting", detail: "Connected; waiting for the first frame", hasFrame: false};
      if (c.last_frame_age > STALE_S) {
        return {kind: "wait", label: "No signal", detail: "Connected, but no frame for " + ago(c.last_frame_age).replace(" ago", ""),
                hasFrame: true};
      }
      return {kind: "live", label: "Live", detail: c.fps.toFixed(1) + " fps", hasFrame: true};
    }
    if (c.state === "connecting") return {kind: "wait", label: "Connecting", detail: "Connecting to the camera…", hasFrame: hasFrame};
    if (c.state === "unreachable" || c.state === "disconnected") {
      return {kind: "down", label: c.state === "unreachable" ? "Unreachable" : "Disconnected",
              detail: (c.last_reason || "no connection") + " — retrying", hasFrame: hasFrame};
    }
    return {kind: "off", label: "Stopped", detail: "The recorder is stopping", hasFrame: hasFrame};
  }

  function toLogin() {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
  }

  /** The recorder's status; null (and the login form, if the session ended) when it cannot be had. */
  function fetchStatus() {
    return fetch("/status.json", {cache: "no-store", credentials: "same-origin"}).then(function (r) {
      if (r.status === 401) { toLogin(); return null; }
      return r.ok ? r.json() : null;
    }).catch(function () { return null; });
  }

  /** Fill the bar: the summary, and the log-out button if there is a login. */
  function showBar(status) {
    var cameras = Object.keys(status.cameras);
    var live = cameras.filter(function (name) { return describe(status.cameras[name]).kind === "live"; }).length;
    var summary = document.getElementById("summary");
    if (summary) {
      summary.textContent = live + " of " + cameras.length + " camera" + (cameras.length === 1 ? "" : "s") +
        " live · recording into " + status.recording.out;
    }
    var logout = document.getElementById("logout");
    if (logout) logout.hidden = !(status.web && status.web.login);
  }

  /** Show the state of a camera in a .picture element's placeholder, and mark the element with its kind. */
  function showState(picture, view) {
    picture.classList.remove("live", "wait", "down", "off", "stale");
    picture.classList.add(view.kind);
    if (view.kind !== "live" && view.hasFrame) picture.classList.add("stale");
    var placeholder = picture.querySelector(".placeholder");
    var icon = ICONS[view.kind] || "";
    if (placeholder.dataset.kind !== view.kind) {
      placeholder.innerHTML = icon + "<strong></strong><span></span>";
      placeholder.dataset.kind = view.kind;
    }
    placeholder.querySelector("strong").textContent = view.label;
    placeholder.querySelector("span").textContent = view.detail;
  }

  function setBadge(badge, view) {
    badge.className = "badge " + view.kind;
    badge.textContent = view.label;
  }

  function enable(link, on) {
    link.classList.toggle("disabled", !on);
    link.setAttribute("aria-disabled", on ? "false" : "true");
    link.tabIndex = on ? 0 : -1;
  }

  return {ago: ago, describe: describe, healthText: healthText, fetchStatus: fetchStatus, showBar: showBar, showState: showState,
          setBadge: setBadge, enable: enable, toLogin: toLogin};
})();
