"""Sub-commands registered into ``python -m planner`` (see planner/cli.py EXTENSIONS)."""


def register(sub, command):
    """Add this module's sub-parsers to ``sub`` and their handlers with ``@command(name)``."""
