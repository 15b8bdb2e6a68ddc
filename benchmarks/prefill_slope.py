"""How fast does TTFT grow with the prompt at light load, measured against the operator tables?

    .venv/bin/python benchmarks/prefill_slope.py [--engine vllm,sglang,trtllm]

At four clients with 1,000+ output tokens a request rarely waits for another's prefill, so the
growth of the measured mean TTFT from the short to the long prompt of one deployment is the growth
of one prompt's prefill. This prints, per model, GPU and TP of the published runs (AIC silicon rows,
profiles/reference, the same rows as benchmarks/bench_e2e.py) at the lowest concurrency (<= 8) run at
two prompt lengths: the measured TTFT growth, the growth of the prefill the measured operator tables
give (one prompt alone, no fitted engine cost: ``validate_e2e.table_prefill_s``), their ratio, and
the extra time per prompt token. Split as ``a + b / TP``, a part that shrinks with TP is GPU work
(sharded), one that does not is not. The engine's ``prefill_token_layer_s`` (planner/fit_e2e.py
``prefill_cost``, docs/validation.md) is fitted on the same growth set against the simulation of the same
runs, which also counts the queueing that grows with the prompt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from planner import validate_e2e as v  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="vllm,sglang,trtllm")
    a = ap.parse_args()
    for engine in [x.strip() for x in a.engine.split(",") if x.strip()]:
        s = v.light_load_growth(v.rows((engine,)))
        print(f"\n== {engine}: TTFT growth with the prompt at light load, measured vs the operator tables")
        if s.empty:
            print("no deployment measured at two prompt lengths at light load")
            continue
        t = pd.DataFrame({"model": s["model"], "gpu": s["gpu"], "tp": s["tp"], "clients": s["clients"],
                          "prompt": s["isl_short"].astype(str) + "->" + s["isl_long"].astype(str),
                          "measured_ms": s["measured_growth_s"] * 1e3, "tables_ms": s["tables_growth_s"] * 1e3,
                          "ratio": s["measured_growth_s"] / s["tables_growth_s"],
                          "extra_us_per_token": s["extra_s_per_token"] * 1e6})
        with pd.option_context("display.width", 200, "display.max_rows", 200):
            print(t.round({"measured_ms": 1, "tables_ms": 1, "ratio": 2, "extra_us_per_token": 2}).to_string(index=False))
        for model, g in s.groupby("model"):
            if g["tp"].nunique() < 2:
                continue
            x = np.column_stack([np.ones(len(g)), 1.0 / g["tp"].to_numpy()])
            (a_, b_), *_ = np.linalg.lstsq(x, g["extra_s_per_token"].to_numpy() * 1e6, rcond=None)
            per_layer = b_ / (g["layers_over_tp"] * g["tp"]).iloc[0]
            print(f"{model}: extra per prompt token = {a_:.1f} us + {b_:.1f} us / TP "
                  f"({per_layer:.2f} us per token and layer at TP 1, split across the ranks)")
        x, y = s["layers_over_tp"].to_numpy(float), s["extra_s_per_token"].to_numpy(float)
        c = float(np.dot(x, y) / np.dot(x, x))
        print(f"per token and layer at TP 1 against the tables, all of them through the origin: {c * 1e6:.3f} us "
              "(the fitted prefill_token_layer_s sets the growth against the simulated one instead, whose first "
              "wave also grows with the prompt: planner/fit_e2e.py prefill_cost)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
