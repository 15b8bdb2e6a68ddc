"""Server time of each dashboard page's rerun after one widget changes (Streamlit's AppTest).

Run: ``python benchmarks/bench_dashboard.py`` from the repository root (``--repeat N``, ``--pages plan,learn``).
For every page: one warm-up run (imports, profile loading), then ``repeat`` reruns after setting
the sidebar's batch to a value not used before, and ``repeat`` after setting one of the page's own
widgets (PAGE_WIDGET) to a new value, so that every cached core call keyed on that widget is
recomputed (the worst case of one widget change; a change back to a value seen before is a cache
hit). Prints the median and worst rerun per page against the 300 ms target; a page over it is
printed as MISS, and the script still exits 0 (a measurement, not a test). A widget inside a form
reruns nothing until its submit button is pressed: that submit starts a search (the capacity page's
simulations), printed as "search" with its time, not held against the widget target.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

TARGET_MS = 300.0
PAGES = ("plan", "tradeoffs", "attention", "quantization", "capacity", "validation", "learn")
# A second widget per page, the page's own where it has one: (kind, key, value for rerun i)
PAGE_WIDGET = {
    "plan": ("number_input", "sb_prompt", lambda i: 1000 + 37 * i),
    "tradeoffs": ("select_slider", "to_maxb", lambda i: (256, 128, 64, 32, 16, 8, 4)[i % 7]),
    "attention": ("number_input", "sb_output", lambda i: 200 + 11 * i),
    "quantization": ("number_input", "q_ctx", lambda i: 5000 + 1000 * i),
    "capacity": ("number_input", "c_rate", lambda i: 3.0 + i),
    "validation": ("radio", "v_pred", lambda i: ("datasheet", "calibrated")[i % 2]),
    "learn": ("number_input", "sb_prompt", lambda i: 1000 + 37 * i),
}
SUBMIT = {"c_rate": "c_submit"}  # widgets inside a form: their change reruns on the form's submit button


def bench_page(page: str, repeat: int) -> tuple[list[float], list[float]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    if page != "plan":
        at.switch_page(f"dashboard/pages/{page}.py").run()
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    base = int(at.session_state["sb_batch"])
    kind, key, value = PAGE_WIDGET[page]
    times, own = [], []
    for i in range(repeat):
        for name, widget_kind, v, out in (("sb_batch", "number_input", base + 7 + 3 * i, times),
                                          (key, kind, value(i), own)):
            getattr(at, widget_kind)(key=name).set_value(v)  # looked up after the last run: a fresh tree
            if name in SUBMIT:
                at.button(key=SUBMIT[name]).click()
            t0 = time.perf_counter()
            at.run()
            out.append((time.perf_counter() - t0) * 1e3)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
    return times, own


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pages", default=",".join(PAGES))
    args = ap.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    print(f"# dashboard: server time of a page's rerun after one widget change (AppTest), {args.repeat} reruns "
          "per widget; a widget inside a form is timed on its submit")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'page':<14}{'widget':<14}{'median ms':>10}{'worst ms':>10}  target {TARGET_MS:.0f} ms (median)")
    for page in args.pages.split(","):
        for name, t in zip(("sb_batch", PAGE_WIDGET[page][1]), bench_page(page, args.repeat), strict=True):
            med = statistics.median(t)
            verdict = "search (form submit)" if name in SUBMIT else ("ok" if med <= TARGET_MS else "MISS")
            print(f"{page:<14}{name:<14}{med:>10.0f}{max(t):>10.0f}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
