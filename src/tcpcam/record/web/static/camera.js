/* tcpcam web interface: one camera full size, on its MJPEG stream.
 *
 * The stream is opened only once the camera has a frame, and again after it
 * broke, so a camera that is down shows its state and never holds the page. */
"use strict";

(function () {
  var name = decodeURIComponent(location.pathname.split("/")[1] || "");
  var stage = document.getElementById("stage");
  var img = document.getElementById("picture");
  var snapshot = document.getElementById("snapshot");
  var streaming = false;
  var retryAt = 0;

  document.title = name + " · tcpcam";
  document.getElementById("name").textContent = name;
  img.alt = "live picture of " + name;

  img.addEventListener("error", function () {
    streaming = false;
    img.removeAttribute("src");
    retryAt = Date.now() + 2000;
  });

  function openStream() {
    streaming = true;
    img.src = "stream.mjpg?t=" + Date.now();
  }

  function text(id, value) { document.getElementById(id).textContent = value; }

  function refresh() {
    tcpcam.fetchStatus().then(function (status) {
      if (!status) return;
      tcpcam.showBar(status);
      var camera = status.cameras[name];
      if (!camera) { location.href = "/"; return; }
      var view = tcpcam.describe(camera);
      tcpcam.showState(stage, view);
      tcpcam.setBadge(document.getElementById("badge"), view);
      tcpcam.enable(snapshot, view.hasFrame);
      text("fps", camera.fps.toFixed(1) + " fps");
      text("age", tcpcam.ago(camera.last_frame_age));
      text("frames", camera.frames.toLocaleString());
      text("reconnects", String(camera.reconnects));
      text("bad", String(camera.bad_frames));
      text("viewers", String(camera.viewers));
      if (view.hasFrame && !streaming && !document.hidden && Date.now() >= retryAt) openStream();
    });
  }

  document.getElementById("fullscreen").addEventListener("click", function () {
    if (stage.requestFullscreen) stage.requestFullscreen();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && streaming) {
      streaming = false;
      img.removeAttribute("src");
    } else if (!document.hidden) {
      refresh();
    }
  });
  refresh();
  setInterval(refresh, 1000);
})();
