"""Configure, bundle, flash, deploy or simulate the ESP32-CAM firmware.

``tcpcam firmware config`` writes config.json; ``bundle`` writes the file tree
for the board; ``flash`` puts a MicroPython image with the camera driver on
the board; ``deploy`` copies bundle and config to it; ``simulate`` runs the
firmware on this computer under the unix MicroPython.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tcpcam.board import bundle as firmware_bundle
from tcpcam.board import config as firmware_config
from tcpcam.board import deploy as firmware_deploy
from tcpcam.board import flash as firmware_flash
from tcpcam.board import simulate as firmware_simulate
from tcpcam.board.bundle import BoardError
from tcpcam.common.optionparsers import helpText, plainDoc
from tcpcam.common.signals import restoreInterrupt
from tcpcam.core import device_config
from tcpcam.core.mac import KEY_BYTES, key_text
from tcpcam.core.text import plural

if TYPE_CHECKING:
    from types import FrameType

#: Exit status for refused input, as argparse uses.
EXIT_USAGE = 2
#: Seconds the simulator gets to stop after Ctrl-C or SIGTERM before it is killed.
STOP_TIMEOUT = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Attach the firmware subcommands to ``parser``."""
    commands = parser.add_subparsers(dest="firmware_command", metavar="ACTION")
    commands.required = True

    config = commands.add_parser(
        "config", help="write or check config.json",
        description="Write the board's config.json from the settings given, over the settings already in the"
        " file (or the defaults), or only check the file with --check. A bad value is refused with one line"
        " and exit status 2; each setting below says the values it allows. A config without a key gets a new"
        " random one (protocol 2), printed once; --key '' turns protocol 2 off.")
    config.add_argument("--file", default="config.json", help="config file to write (default: %(default)s)")
    config.add_argument("--check", action="store_true", help="only check the file, write nothing")
    config.add_argument("--new-key", action="store_true",
                        help="replace the device key with a new random one (clients with the old key are refused)")
    group = config.add_argument_group("settings (unset ones keep their value or default)")
    for option in device_config.SCHEMA.options:
        group.add_argument(option.flag, dest="set_" + option.name, metavar="VALUE",
                           help=helpText(option).replace("%", "%%"))
    config.set_defaults(firmware_run=run_config)

    bundle = commands.add_parser(
        "bundle", help="write the file tree that goes on the board",
        description="Write the file tree that goes on the board (boot.py, main.py, lib/tcpcam/core,"
        " lib/tcpcam_fw and, with --config, config.json) to a new folder.")
    bundle.add_argument("destination", help="new folder for the bundle")
    bundle.add_argument("--mpy", action="store_true", help="compile lib/ to .mpy with mpy-cross")
    bundle.add_argument("--mpy-for", metavar="VERSION",
                        help="compile lib/ to .mpy for a board running this MicroPython (1.19 or later, e.g. 1.21;"
                             " implies --mpy)")
    bundle.add_argument("--config", help="config.json to include (checked first)")
    bundle.add_argument("--force", action="store_true", help="replace DESTINATION if it is not empty")
    bundle.set_defaults(firmware_run=run_bundle)

    flash = commands.add_parser(
        "flash", help="erase the board and write a MicroPython image with esptool",
        description="Erase the board and write a MicroPython image that includes the camera driver, with"
        " esptool (at 0x1000 on the ESP32). Start the board in boot mode first: IO0 to GND while it powers up.")
    flash.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    flash.add_argument("--image", required=True, help="MicroPython .bin that includes the camera driver")
    flash.add_argument("--baud", type=int, default=firmware_flash.DEFAULT_BAUD, help="default: %(default)s")
    flash.add_argument("--chip", default="esp32", choices=sorted(firmware_flash.IMAGE_OFFSETS),
                       help="image offset 0x1000 on esp32 and esp32s2, 0x0 on the others (default: %(default)s)")
    flash.add_argument("--no-erase", action="store_true", help="write without erasing first")
    flash.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    flash.set_defaults(firmware_run=run_flash)

    deploy = commands.add_parser(
        "deploy", help="copy the firmware and config.json to the board, then reset it",
        description="Build the bundle with config.json (or take --bundle), copy it to the board with"
        " mpremote, replacing the previous firmware, and reset the board.")
    deploy.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    deploy.add_argument("--config", default="config.json", help="config file to copy (default: %(default)s)")
    deploy.add_argument("--bundle", help="deploy this bundle folder (with its config.json) instead of building one")
    deploy.add_argument("--mpy", action="store_true", help="copy .mpy modules (compiled with mpy-cross)")
    deploy.add_argument("--mpy-for", metavar="VERSION",
                        help="copy .mpy modules compiled for this board MicroPython (e.g. 1.21; implies --mpy)")
    deploy.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    deploy.set_defaults(firmware_run=run_deploy)

    simulate = commands.add_parser(
        "simulate", help="run the firmware here under the unix MicroPython",
        description="Run the same bundle as deploy on this computer under the unix MicroPython, with a"
        " stand-in camera, until Ctrl-C; only the hardware is simulated.")
    simulate.add_argument("--frames", help="folder of JPEG files to serve (default: the built-in test image)")
    simulate.add_argument("--config", help="config.json to start from (checked first)")
    simulate.add_argument("--port", type=int, default=3333, help="default: %(default)s")
    simulate.add_argument("--bind", default="127.0.0.1", help="default: %(default)s")
    simulate.add_argument("--pin", help="PIN (default: the config's, else 1235)")
    simulate.add_argument("--interval-ms", type=int, help="time between frames (default: the config's)")
    simulate.add_argument("--source", choices=("camera", "jpeg", "hello"), default="camera",
                          help="frame source; camera is the stand-in camera (default: %(default)s)")
    simulate.add_argument("--driver", choices=sorted(firmware_simulate.DRIVERS),
                          default=firmware_simulate.DEFAULT_DRIVER,
                          help="stand-in camera driver: lemariva (module functions) or cnadler86 (Camera class)"
                               " (default: %(default)s)")
    simulate.add_argument("--heapsize", help="limit the MicroPython heap as a board does, e.g. 256k (-X heapsize=)")
    simulate.add_argument("--mpy", action="store_true", help="run the .mpy bundle")
    simulate.add_argument("--micropython", help="path of the unix micropython executable")
    simulate.set_defaults(firmware_run=run_simulate)


def run(args: argparse.Namespace) -> int:
    """Run the chosen firmware subcommand; returns the exit status."""
    try:
        return args.firmware_run(args)
    except BoardError as error:
        return _fail(str(error), 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tcpcam firmware`` on its own (``python -m tcpcam.cli.firmware``)."""
    parser = argparse.ArgumentParser(prog="tcpcam firmware", description=plainDoc(__doc__))
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run_config(args: argparse.Namespace) -> int:
    """``config``: write config.json from options over the file's current settings, or check it."""
    base, problems = firmware_config.read(args.file)
    updates = {key[4:]: value for key, value in vars(args).items()
               if key.startswith("set_") and value is not None}
    if args.check and not Path(args.file).exists():
        return _fail("no config file %s" % args.file, EXIT_USAGE)
    if args.new_key and ("key" in updates or args.check):
        return _fail("--new-key makes a key: give it without --key and --check", EXIT_USAGE)
    made_key = not args.check and (args.new_key or ("key" not in base and "key" not in updates))
    if made_key:
        updates["key"] = key_text(os.urandom(KEY_BYTES))
    config, found = firmware_config.build(base, updates)
    problems += found
    if problems:
        for problem in problems:
            print("tcpcam firmware: %s" % problem, file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print("%s is good" % args.file)
        return 0
    firmware_config.write(args.file, config)
    protocols = ["protocol 2" if config["key"] else "", "legacy PIN" if config["legacy"] else ""]
    print("wrote %s: source %s, port %d, %s, %s" % (
        args.file, config["source"], config["port"], " and ".join(name for name in protocols if name) or "no client",
        "WiFi %s" % config["ssid"] if config["ssid"] else "no WiFi network set"))
    if made_key:
        print("device key (new): %s" % config["key"])
        print("give it to clients with --key or $TCPCAM_KEY; it is kept in %s (mode 0600)" % args.file)
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    """``bundle``: write the device tree to a new folder."""
    config_text = None
    if args.config:
        config = _checked_config(args.config)
        if config is None:
            return EXIT_USAGE
        config_text = firmware_config.render(config)
    if not _good_mpy_target(args.mpy_for):
        return EXIT_USAGE
    mpy = args.mpy or args.mpy_for is not None
    compiler = firmware_bundle.mpy_cross_version(firmware_bundle.mpy_cross_for(args.mpy_for)) if mpy else None
    written = firmware_bundle.write_bundle(args.destination, mpy=mpy, config_text=config_text,
                                           replace=args.force, mpy_for=args.mpy_for)
    for path in written:
        print(path)
    if compiler:
        target = " for MicroPython %s" % args.mpy_for if args.mpy_for else ""
        print("compiled%s with %s" % (target, compiler))
    print("bundle of %s in %s" % (plural(len(written), "file"), args.destination))
    return 0


def run_flash(args: argparse.Namespace) -> int:
    """``flash``: erase and write the image with esptool, or print the esptool calls."""
    try:
        firmware_flash.check_image(args.image)
    except firmware_flash.FlashError as error:
        return _fail(str(error), EXIT_USAGE)
    argvs = firmware_flash.esptool_argvs(args.port, args.image, args.baud, args.chip, not args.no_erase)
    if args.dry_run:
        for argv in argvs:
            print(shlex.join(["esptool"] + argv))
        return 0
    print("Hold IO0 to GND while the board powers up (boot mode) if esptool cannot connect.")
    firmware_flash.flash(argvs)
    print("flashed %s; remove the IO0-GND link and reset the board" % args.image)
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    """``deploy``: build the bundle with the config (or take --bundle), copy it with mpremote, reset."""
    if not _good_mpy_target(args.mpy_for):
        return EXIT_USAGE
    if args.bundle:
        if _checked_config(str(Path(args.bundle) / "config.json")) is None:
            return EXIT_USAGE
        return _deploy(args, Path(args.bundle))
    config = _checked_config(args.config)
    if config is None:
        return EXIT_USAGE
    if args.dry_run:
        # The bundle would live in a temporary folder, gone once deploy ends: say what it holds instead.
        plan = [path for _, path in firmware_bundle.bundle_plan()] + ["config.json"]
        print("# a bundle of %s (config.json from %s) would be built in a temporary folder; in it:"
              % (plural(len(plan), "file"), args.config))
        print(shlex.join(firmware_deploy.chained_argv(args.port, [path for path in plan if "/" not in path])))
        print("# to see or keep the bundle: tcpcam firmware bundle DIR --config %s, then deploy --bundle DIR"
              % shlex.quote(args.config))
        return 0
    with tempfile.TemporaryDirectory(prefix="tcpcam-deploy-") as workdir:
        bundle = Path(workdir) / "bundle"
        firmware_bundle.write_bundle(bundle, mpy=args.mpy, config_text=firmware_config.render(config),
                                     mpy_for=args.mpy_for)
        return _deploy(args, bundle)


def _deploy(args: argparse.Namespace, bundle: Path) -> int:
    try:
        argv = firmware_deploy.mpremote_argv(args.port, bundle)
    except firmware_deploy.DeployError as error:
        return _fail(str(error), EXIT_USAGE)
    if args.dry_run:
        print("cd %s" % shlex.quote(str(bundle)))
        print(shlex.join(argv))
        return 0
    firmware_deploy.deploy(argv, bundle)
    print("deployed to %s; the board restarts with the new firmware" % args.port)
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """``simulate``: run the bundle under the unix MicroPython until Ctrl-C."""
    config: dict[str, Any] | None = {}
    if args.config:
        config = _checked_config(args.config)
        if config is None:
            return EXIT_USAGE
    updates = {"port": str(args.port), "bind": args.bind, "source": args.source}
    if args.pin is not None:
        updates["pin"] = args.pin
    if args.interval_ms is not None:
        updates["interval_ms"] = str(args.interval_ms)
    config, problems = firmware_config.build(config or device_config.defaults(), updates)
    if problems:
        for problem in problems:
            print("tcpcam firmware: %s" % problem, file=sys.stderr)
        return EXIT_USAGE
    if args.frames and not Path(args.frames).is_dir():
        return _fail("no folder %s" % args.frames, EXIT_USAGE)
    with tempfile.TemporaryDirectory(prefix="tcpcam-simulate-") as workdir:
        device = firmware_simulate.prepare(workdir, config, mpy=args.mpy)
        argv, env, cwd = firmware_simulate.command(device, args.frames, args.micropython, heapsize=args.heapsize,
                                                   driver=args.driver)
        return _run_child(argv, env, cwd)


def _run_child(argv: list[str], env: dict[str, str], cwd: str) -> int:
    # Before the child starts, so that it does not inherit an ignored SIGINT either.
    restoreInterrupt()
    child = subprocess.Popen(argv, env=env, cwd=cwd)

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.kill()
            child.wait()


def _good_mpy_target(micropython: str | None) -> bool:
    if micropython is None:
        return True
    try:
        firmware_bundle.mpy_cross_for(micropython)
    except BoardError as error:
        _fail(str(error), EXIT_USAGE)
        return False
    return True


def _checked_config(path: str) -> dict[str, Any] | None:
    if not Path(path).is_file():
        _fail("no config file %s: write one with tcpcam firmware config" % path, EXIT_USAGE)
        return None
    data, problems = firmware_config.read(path)
    config, found = firmware_config.build(data, {})
    problems += found
    if problems:
        for problem in problems:
            print("tcpcam firmware: %s" % problem, file=sys.stderr)
        return None
    return config


def _fail(message: str, status: int) -> int:
    print("tcpcam firmware: %s" % message, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
