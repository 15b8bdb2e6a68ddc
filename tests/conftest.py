import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import settings  # noqa: E402

# Mutation runs (scripts/mutation.py, docs/mutation.md): fewer, fixed examples per property, so every
# mutant sees the same inputs and a run fits the CPU budget. The default profile is unchanged.
settings.register_profile("mutation", max_examples=10, derandomize=True, database=None, deadline=None)


def pytest_collection_modifyitems(config, items):
    """Under mutmut (MUTANT_UNDER_TEST set), run the cheap known-value tests first and the property
    tests last, so that a mutant dies after as few tests as possible. Order only; nothing is skipped."""
    import os

    if not os.environ.get("MUTANT_UNDER_TEST"):
        return
    items.sort(key=lambda it: ("_known" not in it.nodeid, hasattr(getattr(it, "obj", None), "hypothesis")))
