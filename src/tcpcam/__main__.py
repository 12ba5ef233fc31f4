"""``python -m tcpcam``: the ``tcpcam`` console script."""

import sys

from tcpcam.cli.main import main

sys.exit(main())
