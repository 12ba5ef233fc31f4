/* tcpcam web interface: plays one camera's recorded footage in an <img>.
 *
 * Playing reads play.mjpg?from=T&speed=S with fetch() and shows each part of
 * the multipart stream as it comes: the recorder sends the parts at their
 * recorded pace (divided by the speed), each with its recorded time in an
 * X-Timestamp header. Pausing aborts the stream; a new speed starts a new one
 * from the frame shown. Stepping and showing one moment read frame.jpg (with
 * step=next or prev), whose time is in the X-Timestamp response header.
 *
 * `seekTimes` keeps the milliseconds from each seek (a click) to its first
 * frame shown (the image's load event), for the seek benchmark. */
"use strict";

var TcpcamPlayer = (function () {
  /** Bytes of stream held at most while looking for a part's end (a part is one frame). */
  var MAX_BUFFER = 32 * 1024 * 1024;
  /** Seek times kept. */
  var MAX_SEEK_TIMES = 1000;

  function headerEnd(bytes) {
    for (var i = 0; i + 3 < bytes.length; i++) {
      if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
    }
    return -1;
  }

  function concat(a, b) {
    if (!a.length) return b;
    var joined = new Uint8Array(a.length + b.length);
    joined.set(a, 0);
    joined.set(b, a.length);
    return joined;
  }

  function Player(img) {
    this.img = img;
    this.time = null;          // recorded time of the frame shown (Unix seconds)
    this.blob = null;          // its JPEG
    this.playing = false;
    this.speed = 1;
    this.shown = 0;            // frames shown since the last seek
    this.seekTimes = [];
    this.onframe = null;       // function (time): a frame is shown
    this.onstate = null;       // function (state): "playing", "paused", "end", "nothing"
    this.onerror = null;       // function (message)
    this._generation = 0;
    this._controller = null;
    this._url = null;
    this._seekStarted = null;
    this._loadGeneration = -1;
    var player = this;
    img.addEventListener("load", function () { player._loaded(); });
  }

  Player.prototype._loaded = function () {
    if (this._seekStarted !== null && this._loadGeneration === this._generation) {
      this.seekTimes.push(performance.now() - this._seekStarted);
      if (this.seekTimes.length > MAX_SEEK_TIMES) this.seekTimes.shift();
      this._seekStarted = null;
    }
  };

  Player.prototype._show = function (blob, time, generation) {
    if (generation !== this._generation) return;
    var old = this._url;
    this._url = URL.createObjectURL(blob);
    this._loadGeneration = generation;
    this.img.src = this._url;
    if (old) URL.revokeObjectURL(old);
    this.time = time;
    this.blob = blob;
    this.shown += 1;
    if (this.onframe) this.onframe(time);
  };

  Player.prototype._state = function (state) {
    if (this.onstate) this.onstate(state || (this.playing ? "playing" : "paused"));
  };

  Player.prototype._error = function (message) {
    if (this.onerror) this.onerror(message);
  };

  /** Stop whatever is under way (a stream or a frame request): its frames are no longer shown. */
  Player.prototype._abort = function () {
    this._generation += 1;
    if (this._controller) this._controller.abort();
    this._controller = null;
  };

  Player.prototype._fetch = function (url) {
    var controller = new AbortController();
    this._controller = controller;
    return fetch(url, {cache: "no-store", credentials: "same-origin", signal: controller.signal}).then(function (r) {
      if (r.status === 401) { tcpcam.toLogin(); throw new Error("log in again"); }
      if (!r.ok) return r.text().then(function (text) { throw new Error(text.trim() || "HTTP " + r.status); });
      return r;
    });
  };

  /** Play from `from` (Unix seconds) at this.speed; `started` is when the user asked (performance.now()). */
  Player.prototype.play = function (from, started) {
    this._abort();
    var generation = this._generation;
    var player = this;
    this.playing = true;
    this.shown = 0;
    this._seekStarted = started === undefined ? performance.now() : started;
    this._state();
    this._fetch("play.mjpg?from=" + from.toFixed(3) + "&speed=" + this.speed).then(function (r) {
      return player._readParts(r.body.getReader(), generation);
    }).then(function () {
      if (generation !== player._generation) return;
      player.playing = false;
      player._controller = null;
      player._state(player.shown ? "end" : "nothing");
    }).catch(function (error) {
      if (generation !== player._generation || error.name === "AbortError") return;
      player.playing = false;
      player._state();
      player._error(error.message);
    });
  };

  Player.prototype._readParts = function (reader, generation) {
    var player = this;
    var buffer = new Uint8Array(0);
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || generation !== player._generation) return;
        buffer = concat(buffer, chunk.value);
        for (;;) {
          var end = headerEnd(buffer);
          if (end < 0) break;
          var head = new TextDecoder("ascii").decode(buffer.subarray(0, end));
          var length = /content-length:\s*(\d+)/i.exec(head);
          var stamp = /x-timestamp:\s*([0-9.]+)/i.exec(head);
          if (!length) throw new Error("a part of the stream has no length");
          var start = end + 4, size = parseInt(length[1], 10);
          if (buffer.length < start + size + 2) break;
          player._show(new Blob([buffer.slice(start, start + size)], {type: "image/jpeg"}),
                       stamp ? parseFloat(stamp[1]) : null, generation);
          buffer = buffer.slice(start + size + 2);
        }
        if (buffer.length > MAX_BUFFER) throw new Error("a part of the stream is too large");
        return pump();
      });
    }
    return pump();
  };

  /** Stop playing; the frame shown stays. */
  Player.prototype.pause = function () {
    this._abort();
    if (this.playing) {
      this.playing = false;
      this._state();
    }
  };

  /** Play from the frame after the one shown (or from `fallback`), or pause. */
  Player.prototype.toggle = function (fallback) {
    if (this.playing) this.pause();
    else this.play(this.time !== null ? this.time + 0.001 : fallback);
  };

  /** Show one frame: the one shown at `when`, or with `step` "next" / "prev" the one after / before it. */
  Player.prototype.showAt = function (when, step, started) {
    this.pause();
    var generation = this._generation;
    var player = this;
    this._seekStarted = started === undefined ? performance.now() : started;
    var url = "frame.jpg?t=" + when.toFixed(3) + (step ? "&step=" + step : "");
    return this._fetch(url).then(function (r) {
      var stamp = parseFloat(r.headers.get("X-Timestamp"));
      return r.blob().then(function (blob) { player._show(blob, stamp, generation); });
    }).catch(function (error) {
      if (generation !== player._generation || error.name === "AbortError") return;
      player._error(error.message);
    });
  };

  /** The next (`direction` 1) or previous (-1) frame. */
  Player.prototype.step = function (direction) {
    if (this.time === null) return Promise.resolve();
    return this.showAt(this.time, direction > 0 ? "next" : "prev");
  };

  /** A new speed: a playing stream goes on from the frame shown at that speed. */
  Player.prototype.setSpeed = function (speed) {
    this.speed = speed;
    if (this.playing && this.time !== null) this.play(this.time + 0.001);
  };

  return Player;
})();
