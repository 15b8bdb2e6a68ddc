"""The core never imports streamlit, torch, plotly, transformers or huggingface_hub (house style: planner/ is
numpy and pandas only; planner/hub.py imports huggingface_hub inside the functions that go online)."""

import subprocess
import sys


def test_planner_imports_no_ui_or_torch():
    code = ("import sys; import planner.api, planner.sweep, planner.slo, planner.simulate, planner.validate, "
            "planner.calibrate, planner.cli; planner.cli.build_parser(); "
            "bad = [m for m in ('streamlit', 'torch', 'plotly', 'transformers', 'huggingface_hub', 'profiler') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_program_joins_the_profiler_at_the_top():
    # python -m planner (planner/__main__.py) lists the profiler's command; planner.cli alone does not
    r = subprocess.run([sys.executable, "-m", "planner", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "profile" in r.stdout, r.stdout + r.stderr
    code = ("import sys; from planner import cli; h = cli.build_parser().format_help(); "
            "sys.exit(1 if ',profile}' in h or 'profiler' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_verify_without_the_profiler_says_how():
    import contextlib
    import io

    from planner import cli
    hook = cli.HOOKS.pop("verify", None)  # as if only the core's CLI had been loaded
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(["inspect", "gpt2", "--verify"])
    finally:
        if hook is not None:
            cli.HOOKS["verify"] = hook
    assert rc == 2 and "--verify" in err.getvalue() and "python -m planner" in err.getvalue()


def test_only_planner_profiles_locates_the_bundled_data():
    # one module reads the bundled files (issue 12): every other planner module reaches profiles/ through
    # it, so KV_PLANNER_PROFILES moves all of them at once. A module that builds the path itself
    # ('... / "profiles"') would read the repository's copy whatever the variable says.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "planner"
    builds = [p.name for p in root.glob("*.py") if re.search(r"""/\s*["']profiles["']""", p.read_text())]
    assert builds == ["profiles.py"]
