"""``inspect --verify``: the analytic count against transformers' meta-device build, with its provenance.
The core never imports torch for it (tests/test_core_is_pure.py); the CLI imports profiler.metacount lazily."""

import contextlib
import io
import json
from pathlib import Path

from profiler.cli import main as program  # the whole program: the core's commands and the profiler's
from tiny_configs import TINY

E2B = Path(__file__).resolve().parent / "data" / "hub-configs" / "google--gemma-4-E2B-it.json"


def run(*argv) -> tuple[int, dict | str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = program(list(argv))
    return rc, json.loads(out.getvalue()) if rc == 0 and "--json" in argv else out.getvalue()


def test_verify_agrees_and_says_so(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY["gemma4-global"]))
    rc, out = run("inspect", str(tmp_path), "--verify", "--json")
    assert rc == 0 and out["params_meta"] == out["params_analytic"] == out["params"] == out["params_total"]
    assert out["params_source"] == "analytic = transformers meta build" and out["params_differences"] == []


def test_verify_names_the_missing_piece_and_uses_the_meta_count():
    """Gemma 4 E2B's audio tower is not in the planner's inventory (the spec says so): the meta count wins."""
    rc, out = run("inspect", str(E2B), "--verify", "--json")
    assert rc == 0 and out["params"] == out["params_meta"] > out["params_analytic"]
    assert "meta build" in out["params_source"]
    assert any("towers" in d for d in out["params_differences"])
    assert any("audio tower is not counted" in a for a in out["assumptions"])


def test_without_verify_the_count_is_labelled_analytic():
    rc, out = run("inspect", "gpt2", "--json")
    assert rc == 0 and out["params_source"].startswith("analytic") and "params_meta" not in out


def test_verify_refuses_a_what_if_by_name():
    rc, _ = run("inspect", "gpt2", "--verify", "--kv-heads", "1")
    assert rc == 2
