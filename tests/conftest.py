import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# No test reaches the Hugging Face Hub or reads this machine's own cache: Hub ids resolve offline
# against an empty cache (tests/test_hub.py lays out its own). Subprocesses inherit this.
_HF_HOME = tempfile.mkdtemp(prefix="kvp-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ.update(HF_HOME=_HF_HOME, HF_HUB_CACHE=os.path.join(_HF_HOME, "hub"), HF_HUB_OFFLINE="1",
                  HF_ASSETS_CACHE=os.path.join(_HF_HOME, "assets"))
for _name in ("HUGGINGFACE_HUB_CACHE", "HUGGINGFACE_ASSETS_CACHE", "TRANSFORMERS_CACHE"):
    os.environ.pop(_name, None)
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
