"""Run the core tests under MicroPython: ``micropython tests/core/run_micropython.py``.

Imports every ``test_*.py`` module beside this file, calls each ``test_*``
function, and prints ``N passed, N failed``. Exits 1 if any test failed or
none ran.
"""

import os
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
ROOT = HERE + "/../.."
sys.path.insert(0, ROOT + "/src")
sys.path.insert(0, HERE)


def run_module(name):
    module = __import__(name)
    passed = failed = 0
    for attribute in sorted(dir(module)):
        if not attribute.startswith("test_"):
            continue
        try:
            getattr(module, attribute)()
        except Exception as error:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print("FAIL %s.%s: %s: %s" % (name, attribute, type(error).__name__, error))
            sys.print_exception(error)
        else:
            passed += 1
            print("ok   %s.%s" % (name, attribute))
    return passed, failed


def main():
    modules = sorted(entry[:-3] for entry in os.listdir(HERE) if entry.startswith("test_") and entry.endswith(".py"))
    passed = failed = 0
    for name in modules:
        module_passed, module_failed = run_module(name)
        passed += module_passed
        failed += module_failed
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)


main()
