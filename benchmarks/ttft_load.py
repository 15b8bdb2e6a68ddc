"""How TTFT grows with the number of clients, measured against the simulation.

    .venv/bin/python benchmarks/ttft_load.py [--engine vllm,sglang,trtllm]

Reads the committed per-run predictions (profiles/validation/e2e-<engine>.csv, written by
``benchmarks/bench_e2e.py --write``; no simulation is run, ~1 s). For every deployment (model, GPU,
TP, prompt length) of the runs whose flags are recorded (aic-pipeline) run at three or more
concurrencies C up to 32,
the mean TTFT is written as S (1 + k C), S the single-prompt floor (``ttft_lower_bound_ms``: one
prompt prefilled alone), and k, the queueing each added client costs in units of one prefill, is
fitted through the origin on (TTFT / S - 1) against C, once for the measured TTFT and once for the
simulated (in-sample) one. It prints k per deployment, its ratio, and the median signed TTFT error of
the simulation per concurrency: where the simulation's queueing falls short of the runs', and where
it overshoots (docs/validation.md, "TTFT under load").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from planner import profiles  # noqa: E402

BUCKETS = [0, 4, 8, 16, 32, 64, 200, 600]


def growth(c: np.ndarray, ttft: np.ndarray, floor: np.ndarray) -> float:
    """k of TTFT = S (1 + k C), least squares through the origin on (TTFT / S - 1) against C."""
    y = ttft / floor - 1
    return float(np.dot(c, y) / np.dot(c, c))


def table(runs: pd.DataFrame) -> pd.DataFrame:
    out = []
    for key, g in runs.groupby(["model", "gpu", "tp_size", "isl"]):
        # up to 32 clients: at 64 a few deployments fill their KV pool (Llama-3.1-70B on one H200 or two
        # H100s: 40 s TTFT), and then the pool, not the prefill queue, decides
        g = g[g["batch_size"] <= 32]
        if g["batch_size"].nunique() < 3:
            continue
        c, s = g["batch_size"].to_numpy(float), g["ttft_lower_bound_ms"].to_numpy(float)
        km, ks = growth(c, g["silicon_ttft_ms"].to_numpy(float), s), growth(c, g["ttft_in_sample_ms"].to_numpy(float), s)
        out.append({"model": key[0], "gpu": key[1], "tp": int(key[2]), "prompt": int(key[3]),
                    "clients": f"{int(c.min())}-{int(c.max())}", "floor_ms": float(np.median(s)),
                    "k_measured": km, "k_simulated": ks, "ratio": ks / km if km else np.nan})
    return pd.DataFrame(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="vllm,sglang,trtllm")
    a = ap.parse_args()
    pd.set_option("display.width", 200)
    for engine in [x.strip() for x in a.engine.split(",") if x.strip()]:
        path = profiles.ROOT / "validation" / f"e2e-{engine}.csv"
        if not path.is_file():
            print(f"\n== {engine}: no committed runs (run benchmarks/bench_e2e.py --engine {engine} --write)")
            continue
        runs = pd.read_csv(path)
        pipe = runs[runs["source"] == "aic-pipeline"]
        print(f"\n== {engine}: TTFT = S (1 + k C), measured and simulated (in-sample), aic-pipeline runs")
        t = table(pipe)
        if t.empty:
            print("no deployment run at three or more concurrencies")
        else:
            print(t.round({"floor_ms": 1, "k_measured": 4, "k_simulated": 4, "ratio": 2}).to_string(index=False))
            print(f"median k: measured {t['k_measured'].median():.4f}, simulated {t['k_simulated'].median():.4f} "
                  f"(simulated / measured {np.median(t['ratio']):.2f})")
        err = (runs["ttft_in_sample_ms"] - runs["silicon_ttft_ms"]) / runs["silicon_ttft_ms"] * 100
        by = err.groupby([runs["source"], pd.cut(runs["batch_size"], BUCKETS)], observed=True).median().unstack()
        print("median signed TTFT error of the simulation (in-sample, %) by clients:")
        print(by.round(1).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
