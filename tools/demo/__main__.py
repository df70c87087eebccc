"""``python -m tools.demo``: see :mod:`tools.demo.run`."""

import sys

from tools.demo.run import main

sys.exit(main())
