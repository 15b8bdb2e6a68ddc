"""The core never imports streamlit, torch, plotly, transformers or huggingface_hub (house style: planner/ is
numpy and pandas only; planner/hub.py imports huggingface_hub inside the functions that go online)."""

import subprocess
import sys


def test_planner_imports_no_ui_or_torch():
    code = ("import sys; import planner.api, planner.sweep, planner.slo, planner.simulate, planner.validate, "
            "planner.calibrate, planner.cli; planner.cli.build_parser(); "
            "bad = [m for m in ('streamlit', 'torch', 'plotly', 'transformers', 'huggingface_hub') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
