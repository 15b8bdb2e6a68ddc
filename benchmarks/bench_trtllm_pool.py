"""TensorRT-LLM's start-up KV pool against published start-up logs (planner/validate_trtllm_pool.py).

Prints every run (logged and predicted terms, GiB) and the median / largest |error| of the pool, and of the
pool recomputed with the weights the log printed (the start-up rule apart from the weight estimate).
``--write`` stores the clean runs' spread as the band ``capacity --engine trtllm`` states
(profiles/engines/trtllm.json ``startup_pool_band``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner import profiles  # noqa: E402
from planner import validate_trtllm_pool as vt  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="store the clean runs' band in profiles/engines/trtllm.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    p = vt.predict()
    took = time.perf_counter() - t0
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    cols = {"id": "run", "weights_inside_torch_gib": "w_log", "predicted_weights_gib": "w_pred",
            "outside_torch_gib": "outside_log", "predicted_non_torch_gib": "non_torch_pred",
            "predicted_activation_gib": "act_pred", "available_kv_gib": "kv_log", "predicted_kv_gib": "kv_pred",
            "error_pct": "err_%", "error_given_weights_pct": "err_logged_w_%", "clean": "clean"}
    print(f"== {len(p)} TensorRT-LLM start-up logs (profiles/validation/trtllm-startup.csv), predicted in {took:.1f} s")
    print(p[list(cols)].rename(columns=cols).round(2).to_string(index=False))
    print()
    print(vt.summary(p).round(2).to_string(index=False))
    band = vt.pool_band(p)
    print(f"\nband (logged - predicted) / predicted over the {band['n']} clean runs: {band['low_pct']:+.1f} % to "
          f"{band['high_pct']:+.1f} %, median {band['median_pct']:+.1f} %")
    if a.write:
        path = profiles.ROOT / "engines" / "trtllm.json"
        d = json.loads(path.read_text())
        band["group"] = f"TensorRT-LLM: {band['n']} published start-up logs (profiles/validation/{vt.CSV})"
        d["constants"]["startup_pool_band"] = {"value": band, "source": (
            f"(logged - predicted) / predicted of the KV pool over the {band['n']} clean runs of "
            "profiles/validation/trtllm-startup.csv (python benchmarks/bench_trtllm_pool.py --write); the memory "
            "outside torch was read off nine of them, so the band is in-sample for that term")}
        path.write_text(json.dumps(d, indent=2) + "\n")
        print(f"wrote {path.relative_to(profiles.ROOT.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
