/* tcpcam web interface: one camera's recordings of a day on a time axis, playback, events and export.
 *
 * The page reads days.json, then spans.json and events.json of the day
 * chosen, and draws the recorded spans and the motion events on the axis. A
 * click plays from that moment (player.js); a drag selects a range, which
 * the export form takes; the wheel zooms. Exports are jobs of the recorder:
 * the page polls each running job for its progress and offers the file once
 * it is done. Times are shown in the browser's time zone. */
"use strict";

(function () {
  var name = decodeURIComponent(location.pathname.split("/")[1] || "");
  var query = new URLSearchParams(location.search);
  var $ = function (id) { return document.getElementById(id); };
  var stage = $("stage"), track = $("track"), axis = $("axis"), timeline = $("timeline");
  var player = new TcpcamPlayer($("frame"));
  /** Steps between axis labels, in seconds; the first that leaves LABEL_PX between labels is used. */
  var STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
  var LABEL_PX = 80;
  /** Pixels a press must move to be a drag (a selection) rather than a click. */
  var DRAG_PX = 4;
  /** Shortest view of the axis, in seconds. */
  var MIN_VIEW_S = 20;
  /** Milliseconds between looks at a running export. */
  var POLL_MS = 500;

  var state = {day: null, days: [], start: 0, end: 86400, spans: [], events: [], view: null, selection: null,
               jobs: {}};

  document.title = name + " · timeline · tcpcam";
  $("name").textContent = name;
  $("frame").alt = "recorded picture of " + name;

  // -- formatting --------------------------------------------------------

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function clockOf(t, ms) {
    var d = new Date(t * 1000);
    var text = two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
    if (ms) text += "." + String(d.getMilliseconds() + 1000).slice(1);
    return text;
  }
  function dateOf(t) {
    var d = new Date(t * 1000);
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
  }
  function duration(seconds) {
    if (seconds < 9.95) return seconds.toFixed(1) + " s";
    var whole = Math.round(seconds);
    if (whole < 60) return whole + " s";
    if (whole < 3600) return Math.floor(whole / 60) + " min" + (whole % 60 ? " " + two(whole % 60) + " s" : "");
    var minutes = Math.round(whole / 60);
    return Math.floor(minutes / 60) + " h" + (minutes % 60 ? " " + two(minutes % 60) + " min" : "");
  }
  /** Unix seconds of "HH:MM[:SS]" on the day shown (browser time zone). */
  function timeOnDay(text) {
    var parts = text.split(":").map(Number);
    var day = state.day.split("-").map(Number);
    return new Date(day[0], day[1] - 1, day[2], parts[0], parts[1], parts[2] || 0).getTime() / 1000;
  }

  function status(text, kind) {
    var element = $("status");
    element.textContent = text || "";
    element.className = "status" + (kind ? " " + kind : "");
  }

  function getJson(url) {
    return fetch(url, {cache: "no-store", credentials: "same-origin"}).then(function (r) {
      if (r.status === 401) { tcpcam.toLogin(); throw new Error("log in again"); }
      if (!r.ok) return r.text().then(function (text) { throw new Error(text.trim() || "HTTP " + r.status); });
      return r.json();
    });
  }

  // -- the axis ----------------------------------------------------------

  function xOf(t) { return (t - state.view.start) / (state.view.end - state.view.start) * track.clientWidth; }
  function timeAt(x) {
    var t = state.view.start + x / track.clientWidth * (state.view.end - state.view.start);
    return Math.min(state.end, Math.max(state.start, t));
  }
  function percent(t) { return ((t - state.view.start) / (state.view.end - state.view.start) * 100) + "%"; }
  function place(element, from, to, minPx) {
    var left = Math.max(from, state.view.start), right = Math.min(to, state.view.end);
    element.hidden = right < left;
    if (element.hidden) return;
    element.style.left = percent(left);
    element.style.width = ((right - left) / (state.view.end - state.view.start) * 100) + "%";
    element.style.minWidth = minPx + "px";
  }

  function drawAxis() {
    var length = state.view.end - state.view.start;
    var width = Math.max(1, track.clientWidth);
    var step = STEPS[STEPS.length - 1];
    for (var i = 0; i < STEPS.length; i++) {
      if (STEPS[i] / length * width >= LABEL_PX) { step = STEPS[i]; break; }
    }
    // Inline style attributes are refused by the Content-Security-Policy; element.style is not.
    axis.textContent = "";
    var offset = new Date(state.view.start * 1000).getTimezoneOffset() * 60;
    var first = Math.ceil((state.view.start - offset) / step) * step + offset;
    for (var t = first; t <= state.view.end; t += step) {
      var x = (t - state.view.start) / length * width;
      if (x < 18 || x > width - 18) continue;  // a label cut by the edge says nothing
      var tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = percent(t);
      tick.textContent = clockOf(t, false).slice(0, step < 60 ? 8 : 5);
      axis.appendChild(tick);
    }
  }

  function drawTrack() {
    var spans = $("spans"), marks = $("marks");
    spans.textContent = "";
    marks.textContent = "";
    state.spans.forEach(function (span) {
      if (span[1] < state.view.start || span[0] > state.view.end) return;
      var element = document.createElement("div");
      element.className = "span";
      place(element, span[0], span[1], 2);
      spans.appendChild(element);
    });
    state.events.forEach(function (event) {
      var end = event.end === null ? event.peak : event.end;
      if (end < state.view.start || event.start > state.view.end) return;
      var element = document.createElement("div");
      element.className = "mark";
      element.dataset.event = event.id;
      element.title = "Motion " + clockOf(event.start, false) + " · " + duration(end - event.start) +
        " · score " + Math.round(event.peak_score * 100) + " %";
      place(element, event.start, end, 3);
      marks.appendChild(element);
    });
    drawSelection();
    drawPlayhead();
  }

  function drawSelection() {
    var element = $("selection");
    if (!state.selection) { element.hidden = true; return; }
    place(element, state.selection[0], state.selection[1], 1);
  }

  function drawPlayhead() {
    var element = $("playhead");
    var t = player.time;
    element.hidden = t === null || t < state.view.start || t > state.view.end;
    if (!element.hidden) element.style.left = percent(t);
  }

  function draw() {
    drawAxis();
    drawTrack();
    var length = state.view.end - state.view.start;
    document.querySelectorAll(".zoom button").forEach(function (button) {
      var wanted = button.dataset.zoom === "fit" ? fitted().length : Number(button.dataset.zoom);
      button.setAttribute("aria-pressed", String(Math.abs(Math.min(wanted, state.end - state.start) - length) < 1));
    });
  }

  /** The view that shows the day's recordings whole, with a margin: {length, center}. */
  function fitted() {
    if (!state.spans.length) return {length: state.end - state.start, center: (state.start + state.end) / 2};
    var first = Math.max(state.start, state.spans[0][0]);
    var last = Math.min(state.end, state.spans[state.spans.length - 1][1]);
    state.events.forEach(function (event) {
      first = Math.min(first, Math.max(state.start, event.start));
      last = Math.max(last, Math.min(state.end, event.end === null ? event.peak : event.end));
    });
    var length = Math.max(MIN_VIEW_S * 3, (last - first) * 1.1);
    return {length: length, center: (first + last) / 2};
  }

  /** Show `length` seconds of the day around `center` (kept within the day). */
  function zoomTo(length, center) {
    var day = state.end - state.start;
    length = Math.max(MIN_VIEW_S, Math.min(day, length));
    var start = Math.max(state.start, Math.min(state.end - length, center - length / 2));
    state.view = {start: start, end: start + length};
    draw();
  }

  // -- the day -----------------------------------------------------------

  function loadDays() {
    return getJson("days.json").then(function (answer) {
      state.days = answer.days;
      var select = $("day");
      select.textContent = "";
      answer.days.slice().reverse().forEach(function (day) {
        var option = document.createElement("option");
        option.value = option.textContent = day;
        select.appendChild(option);
      });
      if (!answer.days.length) {
        tcpcam.showState(stage, {kind: "wait", label: "Nothing recorded yet",
                                 detail: "The timeline shows this camera's recordings once it has some.", hasFrame: false});
        ["prev", "play", "next", "mark-in", "mark-out", "export", "day", "day-prev", "day-next"].forEach(function (id) {
          $(id).disabled = true;
        });
        $("no-events").hidden = false;
        status("");
        return;
      }
      var wanted = query.get("day");
      loadDay(answer.days.indexOf(wanted) >= 0 ? wanted : answer.days[answer.days.length - 1], query.get("t"));
    });
  }

  function loadDay(day, at) {
    state.day = day;
    $("day").value = day;
    var index = state.days.indexOf(day);
    $("day-prev").disabled = index <= 0;
    $("day-next").disabled = index < 0 || index >= state.days.length - 1;
    status("Loading " + day + "…");
    return Promise.all([getJson("spans.json?day=" + day), getJson("events.json?day=" + day)]).then(function (both) {
      if (state.day !== day) return;
      state.start = both[0].from;
      state.end = both[0].to;
      state.spans = both[0].spans;
      state.events = both[1].events;
      state.selection = null;
      var fit = fitted();
      zoomTo(fit.length, fit.center);
      showEvents();
      fillExportForm();
      history.replaceState(null, "", "timeline?day=" + day);
      var first = state.spans.length ? Math.max(state.start, state.spans[0][0]) : state.start;
      var t = at !== null && at !== undefined && !isNaN(parseFloat(at)) ? parseFloat(at) : first;
      var recorded = state.spans.reduce(function (sum, span) {
        return sum + Math.min(span[1], state.end) - Math.max(span[0], state.start);
      }, 0);
      status(duration(recorded) + " recorded · " + state.events.length + " motion event" +
             (state.events.length === 1 ? "" : "s"));
      if (state.spans.length) return player.showAt(t);
    }).catch(function (error) { status(error.message, "error"); });
  }

  function showEvents() {
    var list = $("events");
    list.textContent = "";
    $("event-count").textContent = state.events.length ? String(state.events.length) : "";
    $("no-events").hidden = state.events.length > 0;
    state.events.forEach(function (event) {
      var item = document.createElement("li");
      item.className = "event";
      item.id = "event-" + event.id;
      var end = event.end === null ? event.peak : event.end;
      item.innerHTML = '<button type="button" class="thumb" title="Play this event"></button>' +
        '<div class="about"><strong></strong><span class="meta"></span></div>' +
        '<button type="button" class="export-event" title="Export this event as an MP4">' +
        '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3v10.6l3.3-3.3 1.4 1.4L12 16.4l-4.7-4.7 1.4-1.4 3.3 3.3V3zM5 18h14v2H5z"/></svg>' +
        '<span class="label">MP4</span></button>';
      var thumb = item.querySelector(".thumb");
      if (event.thumbnail) {
        var img = document.createElement("img");
        img.loading = "lazy";
        img.alt = "motion at " + clockOf(event.peak, false);
        img.src = event.thumbnail;
        thumb.appendChild(img);
      } else {
        thumb.classList.add("none");
      }
      item.querySelector("strong").textContent = clockOf(event.start, false);
      item.querySelector(".meta").textContent = duration(Math.max(0, end - event.start)) + " · score " +
        Math.round(event.peak_score * 100) + " %" + (event.end === null ? " · going on" : "");
      thumb.addEventListener("click", function (e) { playFrom(event.clip_start, e.timeStamp); });
      item.querySelector(".about").addEventListener("click", function (e) { playFrom(event.clip_start, e.timeStamp); });
      item.querySelector(".export-event").addEventListener("click", function () {
        startExport({event: String(event.id)}, "event at " + clockOf(event.start, false));
      });
      list.appendChild(item);
    });
  }

  function playFrom(t, started) {
    status("");
    player.play(t, started);
    if (t < state.view.start || t > state.view.end) zoomTo(state.view.end - state.view.start, t);
  }

  // -- the player --------------------------------------------------------

  player.onframe = function (t) {
    $("clock-time").textContent = clockOf(t, true);
    $("clock-date").textContent = dateOf(t);
    stage.classList.remove("wait", "down", "off", "stale");
    stage.classList.add("live");
    if (player.playing && (t > state.view.end || t < state.view.start)) {
      zoomTo(state.view.end - state.view.start, t + (state.view.end - state.view.start) * 0.4);
    }
    drawPlayhead();
  };
  player.onstate = function (kind) {
    document.body.classList.toggle("playing", kind === "playing");
    $("play").setAttribute("aria-label", kind === "playing" ? "Pause" : "Play");
    $("play").title = kind === "playing" ? "Pause (space)" : "Play (space)";
    if (kind === "end") status("End of the recording");
    else if (kind === "nothing") status("Nothing recorded after this moment");
    else if (kind === "playing") status(player.speed === 1 ? "Playing" : "Playing at " + player.speed + "×");
    else status("Paused");
  };
  player.onerror = function (message) { status(message, "error"); };

  $("play").addEventListener("click", function () {
    var first = state.spans.length ? state.spans[0][0] : state.start;
    player.toggle(first);
  });
  $("prev").addEventListener("click", function () { player.step(-1); });
  $("next").addEventListener("click", function () { player.step(1); });
  $("speed").addEventListener("change", function () { player.setSpeed(parseFloat(this.value)); });

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    if (event.key === " ") { event.preventDefault(); $("play").click(); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); player.step(-1); }
    else if (event.key === "ArrowRight") { event.preventDefault(); player.step(1); }
    else if (event.key === "i" || event.key === "I") { $("mark-in").click(); }
    else if (event.key === "o" || event.key === "O") { $("mark-out").click(); }
  });

  // -- clicks, drags and the wheel on the axis ---------------------------

  var press = null;
  track.addEventListener("mousedown", function (event) {
    if (event.button !== 0 || !state.view) return;
    event.preventDefault();
    var box = track.getBoundingClientRect();
    press = {x: event.clientX, left: box.left, t: timeAt(event.clientX - box.left), dragged: false};
  });
  document.addEventListener("mousemove", function (event) {
    var box = track.getBoundingClientRect();
    var hover = $("hover");
    var inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top - 24 &&
      event.clientY <= box.bottom;
    hover.hidden = !inside || !state.view;
    if (!hover.hidden) {
      hover.style.left = (event.clientX - box.left) + "px";
      hover.textContent = clockOf(timeAt(event.clientX - box.left), false);
    }
    if (!press) return;
    if (Math.abs(event.clientX - press.x) >= DRAG_PX) press.dragged = true;
    if (press.dragged) {
      var t = timeAt(event.clientX - press.left);
      state.selection = [Math.min(press.t, t), Math.max(press.t, t)];
      drawSelection();
      fillExportForm();
    }
  });
  document.addEventListener("mouseup", function (event) {
    if (!press) return;
    var done = press;
    press = null;
    if (!done.dragged) {
      playFrom(timeAt(event.clientX - done.left), event.timeStamp);
    }
  });
  timeline.addEventListener("wheel", function (event) {
    if (!state.view) return;
    event.preventDefault();
    var box = track.getBoundingClientRect();
    var at = timeAt(event.clientX - box.left);
    var length = state.view.end - state.view.start;
    var factor = event.deltaY > 0 ? 1.4 : 1 / 1.4;
    var newLength = Math.max(MIN_VIEW_S, Math.min(state.end - state.start, length * factor));
    var fraction = (at - state.view.start) / length;
    zoomTo(newLength, at - fraction * newLength + newLength / 2);
  }, {passive: false});
  var pan = null;
  axis.addEventListener("mousedown", function (event) {
    if (!state.view) return;
    event.preventDefault();
    pan = {x: event.clientX, view: state.view};
  });
  document.addEventListener("mousemove", function (event) {
    if (!pan) return;
    var length = pan.view.end - pan.view.start;
    var shift = (pan.x - event.clientX) / track.clientWidth * length;
    zoomTo(length, pan.view.start + shift + length / 2);
  });
  document.addEventListener("mouseup", function () { pan = null; });
  document.querySelectorAll(".zoom button").forEach(function (button) {
    button.addEventListener("click", function () {
      if (button.dataset.zoom === "fit") {
        var fit = fitted();
        zoomTo(fit.length, fit.center);
        return;
      }
      var center = player.time !== null ? player.time : (state.view.start + state.view.end) / 2;
      zoomTo(Number(button.dataset.zoom), center);
    });
  });
  window.addEventListener("resize", function () { if (state.view) draw(); });

  // -- days and cameras --------------------------------------------------

  $("day").addEventListener("change", function () { player.pause(); loadDay(this.value); });
  $("day-prev").addEventListener("click", function () {
    var index = state.days.indexOf(state.day);
    if (index > 0) { player.pause(); loadDay(state.days[index - 1]); }
  });
  $("day-next").addEventListener("click", function () {
    var index = state.days.indexOf(state.day);
    if (index >= 0 && index < state.days.length - 1) { player.pause(); loadDay(state.days[index + 1]); }
  });
  $("camera").addEventListener("change", function () {
    location.href = "/" + encodeURIComponent(this.value) + "/timeline";
  });

  function refreshStatus() {
    return tcpcam.fetchStatus().then(function (answer) {
      if (!answer) return;
      tcpcam.showBar(answer);
      var select = $("camera");
      var names = Object.keys(answer.cameras);
      if (select.options.length !== names.length) {
        select.textContent = "";
        names.forEach(function (camera) {
          var option = document.createElement("option");
          option.value = option.textContent = camera;
          select.appendChild(option);
        });
        select.value = name;
        select.hidden = names.length < 2;
      }
    });
  }

  // -- export ------------------------------------------------------------

  function fillExportForm() {
    var selection = state.selection;
    $("export-from").value = selection ? clockOf(Math.floor(selection[0]), false) : "";
    $("export-to").value = selection ? clockOf(Math.ceil(selection[1]), false) : "";
    showSelection();
  }

  function showSelection() {
    var selection = state.selection;
    $("export-hint").textContent = selection ? duration(selection[1] - selection[0]) + " selected"
      : "Drag across the timeline to choose a range";
  }

  function formRange() {
    var from = $("export-from").value, to = $("export-to").value;
    if (!from || !to || !state.day) return null;
    var start = timeOnDay(from), end = timeOnDay(to);
    // The fields show whole seconds: while they still show the selection, the selection is exact.
    if (state.selection && clockOf(Math.floor(state.selection[0]), false) === from.slice(0, 8)) {
      start = state.selection[0];
    }
    if (state.selection && clockOf(Math.ceil(state.selection[1]), false) === to.slice(0, 8)) {
      end = state.selection[1];
    }
    return [start, end];
  }

  ["export-from", "export-to"].forEach(function (id) {
    $(id).addEventListener("change", function () {
      var from = $("export-from").value, to = $("export-to").value;
      if (!from || !to) return;
      state.selection = [timeOnDay(from), timeOnDay(to)];
      if (state.selection[1] < state.selection[0]) state.selection.reverse();
      drawSelection();
      showSelection();
    });
  });
  $("mark-in").addEventListener("click", function () {
    if (player.time === null) return;
    var end = state.selection ? Math.max(state.selection[1], player.time + 1) : player.time + 60;
    state.selection = [player.time, end];
    drawSelection();
    fillExportForm();
  });
  $("mark-out").addEventListener("click", function () {
    if (player.time === null) return;
    var start = state.selection ? Math.min(state.selection[0], player.time - 1) : player.time - 60;
    state.selection = [start, player.time + 0.001];
    drawSelection();
    fillExportForm();
  });

  function exportMessage(text) {
    var element = $("export-message");
    element.textContent = text || "";
    element.hidden = !text;
  }

  $("export-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var range = formRange();
    if (!range) { exportMessage("Select a range on the timeline (drag across it), or give From and To."); return; }
    if (!(range[1] > range[0])) { exportMessage("The end must be after the start."); return; }
    startExport({from: range[0].toFixed(3), to: range[1].toFixed(3)},
                clockOf(range[0], false) + "–" + clockOf(range[1], false));
  });

  function startExport(fields, what) {
    exportMessage("");
    var timelapse = document.querySelector('input[name="kind"]:checked').value === "timelapse";
    if (timelapse) fields.every = $("every").value;
    var body = new URLSearchParams(fields);
    return fetch("exports", {method: "POST", body: body, credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (r.status === 401) { tcpcam.toLogin(); return null; }
        if (!r.ok) return r.text().then(function (text) { throw new Error(text.trim()); });
        return r.json();
      })
      .then(function (job) { if (job) { job.what = what; showJob(job); poll(job.id); } })
      .catch(function (error) { exportMessage(error.message); });
  }

  function showJob(job) {
    var known = state.jobs[job.id];
    if (known && !job.what) job.what = known.what;
    state.jobs[job.id] = job;
    var item = $("job-" + job.id);
    if (!item) {
      item = document.createElement("li");
      item.id = "job-" + job.id;
      item.className = "job";
      item.innerHTML = '<div class="job-name"><strong></strong><span class="meta"></span></div>' +
        '<div class="progress"><div class="fill"></div></div><span class="job-state"></span>' +
        '<button type="button" class="cancel">Cancel</button>' +
        '<a class="button primary download" download hidden>' +
        '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3v10.6l3.3-3.3 1.4 1.4L12 16.4l-4.7-4.7 1.4-1.4 3.3 3.3V3zM5 18h14v2H5z"/></svg>Download</a>';
      item.querySelector(".cancel").addEventListener("click", function () {
        fetch(job.cancel, {method: "POST", credentials: "same-origin"}).then(function (r) {
          return r.ok ? r.json() : null;
        }).then(function (answer) { if (answer) showJob(answer); });
      });
      var list = $("jobs");
      list.insertBefore(item, list.firstChild);
    }
    item.className = "job " + job.state;
    item.querySelector("strong").textContent = job.name;
    item.querySelector("strong").title = job.name;
    item.querySelector(".meta").textContent = (job.kind === "timelapse" ? "Time-lapse, a frame every " + job.every + " s"
      : "Video") + (job.what ? " · " + job.what : "");
    var fraction = job.state === "done" ? 1 : job.fraction || 0;
    item.querySelector(".fill").style.width = (fraction * 100).toFixed(1) + "%";
    var text = {new: "Waiting", running: Math.round(fraction * 100) + " % · " + job.done + " of " + job.total + " frames",
                done: job.frames + " frames · " + duration(job.duration || 0),
                cancelled: "Cancelled", failed: "Failed: " + (job.error || "")}[job.state] || job.state;
    item.querySelector(".job-state").textContent = text;
    var running = job.state === "new" || job.state === "running";
    item.querySelector(".cancel").hidden = !running;
    var download = item.querySelector(".download");
    download.hidden = !job.download;
    if (job.download) {
      download.href = job.download;
      download.setAttribute("download", job.name);
    }
  }

  function poll(id) {
    setTimeout(function () {
      getJson("exports/" + id + ".json").then(function (job) {
        showJob(job);
        if (job.state === "new" || job.state === "running") poll(id);
      }).catch(function (error) {
        var item = $("job-" + id);
        if (item) item.querySelector(".job-state").textContent = error.message;
      });
    }, POLL_MS);
  }

  function loadJobs() {
    return getJson("exports").then(function (answer) {
      answer.exports.slice().reverse().forEach(function (job) {
        showJob(job);
        if (job.state === "new" || job.state === "running") poll(job.id);
      });
    }).catch(function () {});
  }

  window.tcpcamTimeline = {player: player, state: state, xOf: xOf, timeAt: timeAt, zoomTo: zoomTo};

  refreshStatus();
  setInterval(refreshStatus, 5000);
  loadJobs();
  loadDays().catch(function (error) {
    tcpcam.showState(stage, {kind: "down", label: "No timeline", detail: error.message, hasFrame: false});
    status(error.message, "error");
  });
})();
