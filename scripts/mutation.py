"""Mutation testing of planner/, one module at a time (docs/mutation.md).

For each module this copies the working tree (tracked and untracked, not ignored files) into
``.mutation/<module>/`` and runs mutmut there with a ``[tool.mutmut]`` section that mutates only
that module (or the files a target spans, ``FILES``: slo is slo.py, slo_search.py, slo_bound.py and
slo_space.py, one row each in the table) and selects only the tests that exercise it (``TESTS`` below). mutmut records which
selected tests call each mutated function and runs only those per mutant; its results stay in
``.mutation/<module>/mutants/`` (ignored by git), so a second run reuses them.

    python scripts/mutation.py                    # the six target modules
    python scripts/mutation.py kv slo --jobs 1    # some modules, one mutant at a time
    python scripts/mutation.py --report           # only print the table from the last runs

Every mutant runs in a process forked from a server that has imported numpy, pandas, pytest and
hypothesis and, unless the module is in IMPORT_FRESH, collected the selected tests; no lru_cache
or test-module constant computed by the unmutated module leaks into a mutant's run. Hypothesis runs its "mutation" profile (tests/conftest.py:
10 derandomized examples per property), so a rerun gives the same score.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"

# The tests each module's mutants run against: the files that exercise it directly, not the
# dashboard and CLI suites (they reach it too, but only through many layers and slowly).
TESTS: dict[str, list[str]] = {
    "timing": ["tests/test_timing_known.py", "tests/test_serving.py", "tests/test_serving_known.py",
               "tests/test_optables.py", "tests/test_one_rule.py"],
    "serving": ["tests/test_serving_known.py", "tests/test_serving.py"],
    "memory": ["tests/test_memory_known.py", "tests/test_memory.py", "tests/test_kv_known.py",
               "tests/test_serving_known.py", "tests/test_bad_input.py"],
    "kv": ["tests/test_kv_known.py", "tests/test_memory_known.py", "tests/test_timing_known.py",
           "tests/test_layerkinds.py", "tests/test_whatif.py", "tests/test_memory.py"],
    # the SLO search's own fast tests (stubbed plans and simulations); test_slo_search.py and
    # test_sweep_slo.py run real ones, ~30 s, too slow to run per mutant
    "slo": ["tests/test_slo_known.py", "tests/test_slo_search_known.py", "tests/test_slo_bound_known.py",
            "tests/test_slo_space_known.py"],
    "formats": ["tests/test_formats_known.py", "tests/test_formats_published.py", "tests/test_memory.py",
                "tests/test_memory_known.py", "tests/test_quant_formats.py", "tests/test_one_rule.py"],
}
TARGETS = ["timing", "serving", "memory", "kv", "slo", "formats"]
# A target that spans several files of planner/: one mutmut run mutates them all, the table has a row each.
FILES = {"slo": ["slo", "slo_search", "slo_bound", "slo_space"]}
# Modules whose tests compute something of theirs at import time (tests/synthetic.py builds its
# FormatTable, test_formats_published.py loads the bundled one): their mutants' runs import the test
# modules afresh. For the others the fork server collects the tests once, which saves a second or
# so per mutant; no test module calls into them at import time.
IMPORT_FRESH = {"formats"}
PRELOAD = ["numpy", "pandas", "pytest", "_pytest", "hypothesis", "hypothesis.strategies"]


def files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and not f.startswith((".mutation/", "mutants/"))]


def sync(dest: Path) -> None:
    """Copy the working tree into ``dest``, leaving unchanged files alone (mutmut's cache keys on them)."""
    for rel in files():
        src, dst = ROOT / rel, dest / rel
        if not src.is_file():
            continue
        if dst.is_file() and dst.read_bytes() == src.read_bytes():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def configure(dest: Path, module: str) -> None:
    """The copy's pyproject.toml with a [tool.mutmut] section for ``module`` alone."""
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\]\n.*?(?=\n\[|\Z)", "\n", text, flags=re.S)
    tests = [t for t in TESTS[module] if (ROOT / t).exists()]
    (dest / "preload.txt").write_text("\n".join(PRELOAD) + "\n")
    text += f"""
[tool.mutmut]
source_paths = ["planner"]
only_mutate = {json.dumps([f"planner/{m}.py" for m in FILES.get(module, [module])])}
also_copy = ["profiles", "profiler", "tests"]
pytest_add_cli_args_test_selection = {json.dumps(tests)}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "--hypothesis-profile=mutation"]
process_isolation = "forkserver"
forkserver_warmup = "{'import' if module in IMPORT_FRESH else 'collect'}"
preload_modules_file = "{dest / 'preload.txt'}"
use_git_change_detection = false
timeout_constant = 2.0
timeout_multiplier = 5.0
"""
    path = dest / "pyproject.toml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def mutmut(dest: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([str(exe), *args], cwd=dest, env=env, capture_output=True, text=True)


def results(dest: Path) -> dict[str, str]:
    r = mutmut(dest, "results", "--all", "true")
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def summary(module: str) -> list[dict]:
    """One row per file of ``module`` (``FILES``), from the last run's results."""
    dest = WORK / module
    if not (dest / "mutants").exists():
        return []
    res = results(dest)
    return [_row(m, {k: v for k, v in res.items() if k.rsplit(".", 1)[0] == f"planner.{m}"})
            for m in FILES.get(module, [module])]


def _row(module: str, res: dict[str, str]) -> dict:
    count = {s: sum(1 for v in res.values() if v == s) for s in set(res.values())}
    killed = count.get("killed", 0) + count.get("timeout", 0) + count.get("segfault", 0)
    total = len(res)
    return {"module": module, "total": total, "killed": count.get("killed", 0), "timeout": count.get("timeout", 0),
            "survived": count.get("survived", 0), "no_tests": count.get("no tests", 0),
            "other": total - sum(count.get(k, 0) for k in ("killed", "timeout", "survived", "no tests")),
            "score": killed / total if total else float("nan"),
            "survivors": sorted(k for k, v in res.items() if v not in ("killed", "timeout", "segfault"))}


def run(module: str, jobs: int, fresh: bool = False, rerun: bool = False) -> None:
    """mutmut on ``module``: every mutant without a result (all of them with ``fresh``), or with
    ``rerun`` only the last run's survivors again (after a test was added)."""
    dest = WORK / module
    if fresh and (dest / "mutants").exists():
        shutil.rmtree(dest / "mutants")
    names = [k for row in summary(module) for k in row["survivors"]] if rerun else []
    dest.mkdir(parents=True, exist_ok=True)
    sync(dest)
    configure(dest, module)
    t0 = time.time()
    r = mutmut(dest, "run", "--max-children", str(jobs), *names)
    (dest / "mutmut-run.log").write_text(r.stdout + r.stderr)
    if r.returncode:
        print(f"{module}: mutmut exited {r.returncode}; see {dest / 'mutmut-run.log'}", file=sys.stderr)
    print(f"{module}: {time.time() - t0:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"modules of planner/ (default: {' '.join(TARGETS)})")
    ap.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    ap.add_argument("--report", action="store_true", help="print the last results without running")
    ap.add_argument("--fresh", action="store_true", help="forget earlier results: run every mutant")
    ap.add_argument("--rerun-survivors", action="store_true", help="run only the last run's survivors again")
    ap.add_argument("--survivors", action="store_true", help="list the surviving mutants too")
    ap.add_argument("--json", type=Path, help="write the table to this file as JSON")
    args = ap.parse_args(argv)
    mods = args.modules or TARGETS
    unknown = [m for m in mods if m not in TESTS]
    if unknown:
        ap.error(f"no test selection for {unknown}; add it to TESTS")
    if not args.report:
        for m in mods:
            run(m, args.jobs, fresh=args.fresh, rerun=args.rerun_survivors)
    rows = [r for m in mods for r in summary(m)]
    print(f"{'module':10} {'total':>6} {'killed':>7} {'timeout':>8} {'survived':>9} {'no tests':>9} {'score':>7}")
    for s in rows:
        print(f"{s['module']:10} {s['total']:6} {s['killed']:7} {s['timeout']:8} {s['survived']:9} {s['no_tests']:9} "
              f"{100 * s['score']:6.1f}%")
        if args.survivors:
            for k in s["survivors"]:
                print(f"    {k}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
