"""The asyncio server: a thin driver of the core's ServerRole on the board.

Every rule (admission, the request, pacing, fan-out, deadlines) is
``tcpcam.core.server_role``'s. This module owns the listening socket, the
frame source and one timer task: it tells the role what happens and
carries out the actions it returns. Captures run in the timer task, one at
a time; ``gc.collect()`` runs after every frame so the heap does not
fragment with frames of different sizes.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import gc
import os
import time

from tcpcam_fw.client import Connection, describe
from tcpcam_fw.clock import MAX_GAP_MS, Clock
from tcpcam_fw.health import application
from tcpcam_fw.keepalive import set_keepalive
from tcpcam_fw.log import say

import tcpcam
from tcpcam.core.actions import UPDATE_COMMIT, ApplySettings, AskHealth, Capture, Close, Log, UpdateStep, Write
from tcpcam.core.camera_settings import FRAMESIZE_NAMES, SETTINGS
from tcpcam.core.limits import BOARD_BACKLOG, UPDATE_REBOOT_DELAY_MS
from tcpcam.core.mac import parse_key
from tcpcam.core.server_role import ServerRole


def confirm_serving():
    """Tell the loader (``tcpcam_boot``, absent when the firmware runs without it) that the application serves."""
    try:
        import tcpcam_boot
    except ImportError:
        return
    tcpcam_boot.serving()


class FrameServer:
    """Serve frames from ``source`` to clients, with the settings in ``config``."""

    def __init__(self, config, source):
        self.config = config
        self.source = source
        self.clock = Clock()
        self.role = ServerRole(
            config["pin"], max_clients=config["max_clients"], interval_ms=config["interval_ms"],
            handshake_timeout_ms=config["handshake_timeout_ms"], idle_ms=config["idle_ms"],
            send_timeout_ms=config["send_timeout_ms"], close_timeout_ms=config["close_timeout_ms"],
            source_timeout_ms=None, pin_failures=config["pin_failures"],
            pending_per_address=config["pending_per_address"], first_byte_timeout_ms=config["first_byte_timeout_ms"],
            key=parse_key(config["key"]) if config["key"] else None, legacy=config["legacy"], random=os.urandom,
            device={"name": config["name"], "firmware": "tcpcam %s" % tcpcam.__version__,
                    "sensor": getattr(source, "sensor", config["source"]),
                    "framesizes": list(getattr(source, "framesizes", FRAMESIZE_NAMES))},
            settings={option.name: config[option.name] for option in SETTINGS.options})
        self._started = time.ticks_ms()
        self._pending = []
        self.frames = 0
        self._ticket = 0
        self._wake = asyncio.Event()
        self._keepalive_said = False
        self._stats_frames = 0
        #: Carries out the steps of an update; called once the server listens (the loader's "serving").
        self.updates = None
        self.on_serving = confirm_serving

    def now(self):
        """The core's clock: milliseconds since start."""
        return self.clock.now()

    async def serve(self):
        """Listen and run the timer until the program stops."""
        config = self.config
        try:
            server = await asyncio.start_server(self._accept, config["bind"], config["port"], BOARD_BACKLOG)
        except OSError as error:
            say("server: cannot listen on %s:%d: %s" % (config["bind"], config["port"], error))
            raise
        say("server: listening on %s:%d, source %s" % (config["bind"], config["port"], config["source"]))
        if self.on_serving is not None:
            self.on_serving()
        try:
            await self._timer()
        finally:
            server.close()

    def run(self, actions):
        """Carry out the role's actions, in order, and wake the timer to look at its deadline again."""
        for action in actions:
            if isinstance(action, Write):
                action.conn.give(action.parts)
            elif isinstance(action, Close):
                action.conn.close(action.abort)
            elif isinstance(action, Capture):
                self._ticket = action.ticket
            elif isinstance(action, Log):
                say(action.text)
            elif isinstance(action, (ApplySettings, AskHealth, UpdateStep)):
                # Answered from the timer task, not from inside this call.
                self._pending.append(action)
        self._wake.set()

    def _answer(self, action):
        if isinstance(action, AskHealth):
            self.run(self.role.report_health(self.health(), self.now()))
            return
        if isinstance(action, UpdateStep):
            if self.updates is None:
                # Imported on the first update only: a board that never takes one keeps the heap.
                from tcpcam_fw.update import UpdateStore

                self.updates = UpdateStore()
            error = self.updates.carry_out(action)
            if action.ticket:
                self.run(self.role.update_done(action.ticket, error, self.now()))
            if action.step == UPDATE_COMMIT and error is None:
                asyncio.create_task(self._reset_soon())
            return
        apply = getattr(self.source, "apply", None)
        if apply is None:
            self.run(self.role.settings_applied(action.ticket, None, "this source has no camera settings",
                                                self.now()))
            return
        try:
            applied = apply(action.settings)
        except (OSError, ValueError) as error:
            self.run(self.role.settings_applied(action.ticket, None, str(error) or "the camera refused",
                                                self.now()))
            return
        self.run(self.role.settings_applied(action.ticket, applied or action.settings, None, self.now()))

    async def _reset_soon(self):
        await asyncio.sleep_ms(UPDATE_REBOOT_DELAY_MS)
        say("update: stored; resetting to start it")
        self.updates.boot.reset()

    def health(self):
        """The board's own figures for protocol 2's health messages."""
        facts = getattr(self.source, "health", None)
        status = self.role.status()
        figures = {"free_heap": gc.mem_free(), "uptime_s": time.ticks_diff(time.ticks_ms(), self._started) // 1000,
                   "clients": status["clients"], "streaming": status["streaming"], "frames": self.frames,
                   "capture_errors": status["capture_failures"]}
        if callable(facts):
            figures.update(facts())
        figures.update(application())
        return figures

    def set_keepalive(self, writer):
        """Keep-alive on a new connection; a port without it is said once."""
        config = self.config
        problem = set_keepalive(getattr(writer, "s", None), config["keepalive_idle"],
                                config["keepalive_interval"], config["keepalive_count"])
        if problem and not self._keepalive_said:
            self._keepalive_said = True
            say("server: " + problem)

    async def _accept(self, reader, writer):
        peer, host = describe(writer)
        connection = Connection(self, reader, writer, peer)
        self.run(self.role.connect(connection, host, self.now(), peer))
        if not connection.closing:
            self.set_keepalive(writer)
        await connection.serve()

    async def _timer(self):
        role = self.role
        while True:
            self.run(role.tick(self.now()))
            while self._pending:
                self._answer(self._pending.pop(0))
            if self._ticket:
                ticket, self._ticket = self._ticket, 0
                self._capture(ticket)
                continue
            due = role.next_deadline()
            wait = MAX_GAP_MS if due is None else min(MAX_GAP_MS, due - self.now())
            if wait <= 0:
                await asyncio.sleep_ms(0)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for_ms(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _capture(self, ticket):
        frame = self.source.capture()
        if frame is False or frame is None:
            self.run(self.role.capture_failed(ticket, self.source.problem or "capture failed", self.now()))
        else:
            self.run(self.role.captured(ticket, frame, self.now()))
            self.frames += 1
        frame = None
        allocated = gc.mem_alloc() if self._stats_due() else -1
        gc.collect()
        if allocated >= 0:
            self._say_stats(allocated)

    def _stats_due(self):
        every = self.config["stats_every"]
        return every and self.frames % every == 0 and self.frames != self._stats_frames

    def _say_stats(self, allocated):
        self._stats_frames = self.frames
        say("stats: frames=%d streaming=%d alloc_before_gc=%d alloc_after_gc=%d free=%d"
            % (self.frames, self.role.streaming, allocated, gc.mem_alloc(), gc.mem_free()))
