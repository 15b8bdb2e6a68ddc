"""``python -m planner``: the program. The core's commands plus the profiler's (profiler/cli.py:
``profile`` and the meta-device check of ``inspect --verify``), which depends on the planner and is
joined here, at the top, so that planner/ itself never imports it."""

import sys

from .cli import EXTENSIONS_CORE, PROFILER, main

sys.exit(main(extensions=EXTENSIONS_CORE + (PROFILER,)))
