"""The loader: picks the application slot at boot, counts trial boots and rolls back. Never replaced by an update.

It lives in ``lib/`` beside the factory application (``main.py`` puts
``lib`` on ``sys.path`` and runs :func:`run`), outside every folder an
update may write. The board keeps up to three applications: ``factory`` (``lib/``, what
``tcpcam firmware deploy`` writes) and the update slots ``a`` and ``b``
(``/slots/a``, ``/slots/b``). An update is written into the slot that does
not run, verified, and then named in the boot state as the one to *try*;
only that small file changes at once (written beside, then renamed over the
old one: an atomic rename on littlefs), so a power cut leaves either the old
state or the new one.

At boot, a slot to try gets :data:`TRIAL_BOOTS` boots: each is counted in
the boot state before the application starts, and the application must
reach "serving" (its server listens: :func:`serving`) within the trial time
(config.json's ``update_trial_ms``, else :data:`TRIAL_MS`), or a guard
thread resets the board. An exception escaping the application resets the
board too (never a REPL). A boot that finds its trial boots used up rolls
back to the good slot and says so in the boot state (health reports it);
a trial that serves becomes the good slot.

This module is self-contained (the core lives in the slots, so it cannot
use it); its bounds equal ``tcpcam.core.limits``'s ``UPDATE_TRIAL_MS``,
``MIN_UPDATE_TRIAL_MS``, ``MAX_UPDATE_TRIAL_MS`` and ``UPDATE_TRIAL_BOOTS``
(a test checks).
"""

import gc
import json
import os
import sys
import time

#: Where the update slots and the boot state live (a folder of the board's littlefs).
SLOT_ROOT = "/slots"
STATE_FILE = SLOT_ROOT + "/state.json"
NEW_STATE_FILE = SLOT_ROOT + "/state.new"
#: The application ``tcpcam firmware deploy`` writes, and the update slots.
FACTORY = "factory"
FACTORY_LIB = "lib"
SLOTS = ("a", "b")
#: Time a trial application has to reach "serving", its bounds, and the trial boots it gets.
TRIAL_MS = 60000
MIN_TRIAL_MS = 1000
MAX_TRIAL_MS = 600000
TRIAL_BOOTS = 1
#: How often the guard thread looks at the trial deadline.
GUARD_PERIOD_MS = 100
#: Largest boot state or config file read.
MAX_FILE_BYTES = 4096
#: The config file, for ``update_trial_ms``.
CONFIG_FILE = "config.json"
#: ``os.ilistdir``'s type of a folder.
FOLDER = 0x4000
#: ``sys.platform`` of ports that run on a host: there the slots live only on the simulator's stand-in flash.
HOST_PLATFORMS = ("linux", "darwin", "win32")

#: What this boot runs: ``slot``, ``version``, ``trial`` (on trial), ``confirmed``, ``rolled_back``, and
#: whether the board has its update slots (``slots``).
running = {"slot": FACTORY, "version": "", "trial": False, "confirmed": True, "rolled_back": False, "slots": False}


def say(message):
    """One console line, as the application's (seconds since boot first)."""
    print("%9.3f %s" % (time.ticks_ms() / 1000, message))


def default_state():
    """The boot state of a board that never took an update."""
    return {"good": FACTORY, "try": None, "tries": 0, "version": "", "rolled_back": False}


def _read_json(path):
    try:
        with open(path) as handle:
            return json.loads(handle.read(MAX_FILE_BYTES))
    except (OSError, ValueError):
        return None


def read_state():
    """The boot state; anything missing or odd reads as the default's value."""
    data = _read_json(STATE_FILE)
    state = default_state()
    if not isinstance(data, dict):
        return state
    if data.get("good") in SLOTS:
        state["good"] = data["good"]
    if data.get("try") in SLOTS and data["try"] != state["good"]:
        state["try"] = data["try"]
    tries = data.get("tries")
    if type(tries) is int and 0 <= tries <= 1000:
        state["tries"] = tries
    if isinstance(data.get("version"), str):
        state["version"] = data["version"][:64]
    state["rolled_back"] = data.get("rolled_back") is True
    return state


def write_state(state):
    """Replace the boot state at once: written beside it, then renamed over it."""
    with open(NEW_STATE_FILE, "w") as handle:
        handle.write(json.dumps(state))
    os.rename(NEW_STATE_FILE, STATE_FILE)


def remove_tree(path):
    """Remove ``path`` and everything under it; False when there was nothing."""
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return False
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == FOLDER:
            remove_tree(child)
        else:
            os.remove(child)
    os.rmdir(path)
    return True


def slot_path(slot):
    """The folder that holds ``slot``'s ``tcpcam`` and ``tcpcam_fw`` packages."""
    return FACTORY_LIB if slot == FACTORY else SLOT_ROOT + "/" + slot


def has_app(slot):
    """True when ``slot`` holds an application to start."""
    for name in ("app.py", "app.mpy"):
        try:
            os.stat(slot_path(slot) + "/tcpcam_fw/" + name)
            return True
        except OSError:
            pass
    return False


def trial_ms():
    """The trial time: config.json's ``update_trial_ms`` when it is within the bounds, else :data:`TRIAL_MS`."""
    config = _read_json(CONFIG_FILE)
    value = config.get("update_trial_ms") if isinstance(config, dict) else None
    if type(value) is int and MIN_TRIAL_MS <= value <= MAX_TRIAL_MS:
        return value
    return TRIAL_MS


def reset():
    """Reset the board (``machine.reset()``); where the port cannot, end the program."""
    try:
        import machine

        machine.reset()
    except (ImportError, AttributeError):
        pass
    raise SystemExit(3)


def _mount_flash():
    """True once :data:`SLOT_ROOT` exists: a folder of the board's littlefs, or under the unix port the
    simulator's stand-in for the flash, mounted there. A host port without it has no slots (False):
    nothing is ever written outside the device's folder."""
    try:
        import board_flash
    except ImportError:
        board_flash = None
    if board_flash is not None:
        board_flash.mount(SLOT_ROOT)
        return True
    if sys.platform in HOST_PLATFORMS:
        return False
    try:
        os.mkdir(SLOT_ROOT)
    except OSError:
        pass
    return True


def choose():
    """Read (and update) the boot state; returns the slot to start and whether it is on trial."""
    running["slots"] = _mount_flash()
    if not running["slots"]:
        return FACTORY, False
    state = read_state()
    slot = state["good"]
    trial = False
    if state["try"] is not None:
        if state["tries"] >= TRIAL_BOOTS or not has_app(state["try"]):
            say("boot: update %s in slot %s did not reach serving on its trial boot; rolled back to slot %s"
                % (state["version"] or "(no version)", state["try"], slot))
            state["try"] = None
            state["tries"] = 0
            state["rolled_back"] = True
            write_state(state)
        else:
            state["tries"] += 1
            write_state(state)
            slot = state["try"]
            trial = True
    for other in SLOTS:
        # What a power cut during a transfer left behind, or a rolled-back update: neither good nor to try.
        if other not in (state["good"], state["try"]) and remove_tree(slot_path(other)):
            say("boot: removed the bundle in slot %s, which is neither good nor to try" % other)
    if not has_app(slot):
        if slot != FACTORY:
            say("boot: slot %s holds no application; starting slot %s" % (slot, FACTORY))
        slot = FACTORY
    running["slot"] = slot
    running["version"] = state["version"] if slot != FACTORY else ""
    running["trial"] = trial
    running["confirmed"] = not trial
    running["rolled_back"] = state["rolled_back"]
    return slot, trial


def serving():
    """The application serves: a trial slot becomes the good one (called by the application once it listens)."""
    if running["confirmed"]:
        return
    state = read_state()
    state["good"] = running["slot"]
    state["try"] = None
    state["tries"] = 0
    state["rolled_back"] = False
    write_state(state)
    running["confirmed"] = True
    running["rolled_back"] = False
    say("boot: update %s in slot %s serves: it is the good application now" % (running["version"], running["slot"]))


def _guard(deadline_ms):
    started = time.ticks_ms()
    while not running["confirmed"]:
        if time.ticks_diff(time.ticks_ms(), started) >= deadline_ms:
            say("boot: update in slot %s did not reach serving within %d ms; resetting"
                % (running["slot"], deadline_ms))
            reset()
        time.sleep_ms(GUARD_PERIOD_MS)


def run():
    """Start the chosen application; a crash, or a trial that ends without serving, resets the board."""
    slot, trial = choose()
    if slot != FACTORY:
        sys.path.insert(0, slot_path(slot))
    if trial:
        deadline = trial_ms()
        say("boot: trying update %s in slot %s (trial boot %d of %d; it must serve within %d ms)"
            % (running["version"], slot, read_state()["tries"], TRIAL_BOOTS, deadline))
        import _thread

        _thread.start_new_thread(_guard, (deadline,))
    gc.collect()
    try:
        from tcpcam_fw import app

        app.main()
    except Exception as error:  # noqa: BLE001 - whatever escapes the application resets the board
        sys.print_exception(error)
        say("boot: the application of slot %s stopped on %s; resetting" % (slot, type(error).__name__))
        reset()
    except SystemExit:
        if not running["confirmed"]:
            say("boot: the application of slot %s ended before it served; resetting" % slot)
            reset()
        raise
    if not running["confirmed"]:
        say("boot: the application of slot %s ended before it served; resetting" % slot)
        reset()
