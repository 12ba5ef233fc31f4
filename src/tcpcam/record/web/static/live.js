/* tcpcam web interface: the grid of cameras.
 *
 * Each tile asks for its camera's newest frame (latest.jpg) again as soon as
 * one is shown, at most every `interval` ms, and only while the camera has a
 * frame: a camera that is down shows its state and never holds the page.
 * Polling, rather than one MJPEG stream per tile, keeps the browser's few
 * connections per site free whatever the number of cameras. */
"use strict";

(function () {
  var grid = document.getElementById("grid");
  var tiles = {};
  var interval = 100;

  var TIMELINE_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 6h18v2H3zm0 5h11v2H3zm0 5h18v2H3zm14-5h4v2h-4z"/></svg>';
  var SNAPSHOT_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3v10.6l3.3-3.3 1.4 1.4L12 16.4l-4.7-4.7' +
    ' 1.4-1.4 3.3 3.3V3zM5 18h14v2H5z"/></svg>';

  function Tile(name) {
    this.name = name;
    this.tag = null;
    this.hasFrame = false;
    this.running = false;
    this.element = document.createElement("article");
    this.element.className = "tile";
    this.element.id = "cam-" + name;
    this.element.innerHTML =
      '<a class="view" href="' + encodeURIComponent(name) + '/" title="Show this camera full size">' +
      '<div class="picture wait"><img alt=""><div class="placeholder"><strong>Loading</strong><span></span></div></div></a>' +
      '<div class="caption"><span class="name"></span><span class="badge wait">…</span><span class="meta"></span>' +
      '<a class="button timeline" title="Recordings: timeline, playback, export">' + TIMELINE_ICON +
      '<span class="label">Timeline</span></a>' +
      '<a class="button disabled snapshot" download title="Download the newest frame as a JPEG">' + SNAPSHOT_ICON +
      '<span class="label">Snapshot</span></a></div>';
    this.picture = this.element.querySelector(".picture");
    this.img = this.element.querySelector("img");
    this.img.alt = "live picture of " + name;
    this.element.querySelector(".name").textContent = name;
    this.badge = this.element.querySelector(".badge");
    this.meta = this.element.querySelector(".meta");
    this.snapshot = this.element.querySelector(".snapshot");
    this.snapshot.href = encodeURIComponent(name) + "/snapshot.jpg";
    this.element.querySelector(".timeline").href = encodeURIComponent(name) + "/timeline";
    this.snapshot.addEventListener("click", function (event) { event.stopPropagation(); });
  }

  Tile.prototype.update = function (camera) {
    var view = tcpcam.describe(camera);
    tcpcam.showState(this.picture, view);
    tcpcam.setBadge(this.badge, view);
    this.meta.textContent = view.kind === "live" ? [view.detail, tcpcam.healthText(camera)].filter(Boolean).join(" · ")
      : camera.last_frame_age === null ? "" : "last frame " + tcpcam.ago(camera.last_frame_age);
    this.hasFrame = view.hasFrame;
    tcpcam.enable(this.snapshot, view.hasFrame);
    if (this.hasFrame && !this.running) this.poll();
  };

  Tile.prototype.poll = function () {
    var tile = this;
    if (!tile.hasFrame || document.hidden) { tile.running = false; return; }
    tile.running = true;
    var started = Date.now();
    var headers = tile.tag ? {"If-None-Match": tile.tag} : {};
    fetch(encodeURIComponent(tile.name) + "/latest.jpg", {cache: "no-store", credentials: "same-origin", headers: headers})
      .then(function (r) {
        if (r.status === 401) { tcpcam.toLogin(); return null; }
        if (r.status !== 200) return null;
        tile.tag = r.headers.get("ETag");
        return r.blob();
      })
      .then(function (blob) { if (blob) tile.show(blob); })
      .catch(function () {})
      .then(function () {
        setTimeout(function () { tile.poll(); }, Math.max(0, interval - (Date.now() - started)));
      });
  };

  Tile.prototype.show = function (blob) {
    var old = this.img.src;
    this.img.src = URL.createObjectURL(blob);
    if (old) URL.revokeObjectURL(old);
  };

  function refresh() {
    tcpcam.fetchStatus().then(function (status) {
      if (!status) return;
      tcpcam.showBar(status);
      var names = Object.keys(status.cameras);
      interval = 100 * Math.ceil(names.length / 4);
      grid.classList.toggle("few", names.length === 1);
      names.forEach(function (name) {
        if (!tiles[name]) {
          tiles[name] = new Tile(name);
          grid.appendChild(tiles[name].element);
        }
        tiles[name].update(status.cameras[name]);
      });
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) Object.keys(tiles).forEach(function (name) { if (!tiles[name].running) tiles[name].poll(); });
  });
  refresh();
  setInterval(refresh, 1000);
})();
