"""Runs first on every boot: free what the boot left behind before main.py."""

import gc

gc.collect()
