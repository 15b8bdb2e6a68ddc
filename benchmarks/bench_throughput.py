"""Offline maximum throughput against TensorRT-LLM's published trtllm-bench tables (planner/validate_throughput.py).

Run: ``python benchmarks/bench_throughput.py`` from the repository root (~20 s on 2 cores). Every cell of
profiles/validation/trtllm-perf-overview.csv (NVIDIA's perf-overview page; profiles/validation/
trtllm-perf-overview.md says which commit and which cells) is simulated as ``trtllm-bench throughput`` ran it:
every request queued at once, fixed lengths, EOS ignored, the max_batch_size / max_num_tokens trtllm-bench
picks itself (``validate_throughput.bench_settings``). Prints the median / p90 |error| and the signed median
of the output tokens a second per GPU, over all cells, per model, per GPU and per timing source; ``--rows``
every cell; ``--write`` saves the scored cells the dashboard's Validation page shows. No fitted cost of the
planner saw these figures. A measurement, not a test: it exits 0 whatever
the errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from planner import validate_throughput as vt  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", action="store_true", help="print every cell")
    ap.add_argument("--write", action="store_true",
                    help=f"save the scored cells to {vt.predicted_path().relative_to(ROOT)} (the Validation page's)")
    args = ap.parse_args(argv)
    d = vt.rows()
    t0 = time.perf_counter()
    pred = vt.predict(d)
    took = time.perf_counter() - t0
    print(f"== {len(d)} trtllm-bench throughput cells (TensorRT-LLM perf-overview), simulated in {took:.0f} s; "
          "never fitted on")
    print("output tokens/s per GPU: median / p90 |error| % and signed median % (predicted - measured) / measured")
    s = vt.summary(pred)
    pd.set_option("display.width", 200)
    for c in ("median", "p90"):
        s[c] = s[c].map("{:.1f}".format)
    s["signed"] = s["signed"].map("{:+.1f}".format)
    print(s.to_string(index=False))
    missed = pred[pred["why"].fillna("") != ""]
    print(f"\nnot predicted: {len(missed)} of {len(d)}")
    for r in missed.itertuples():
        print(f"  {r.id}: {r.why[:150]}")
    if args.rows:
        cols = ["id", "max_batch_size", "max_num_tokens", "kv_pool_gib", "mean_running", "output_tok_s_per_gpu",
                "predicted_tok_s_per_gpu", "error_pct", "tables"]
        print(pred[cols].round(1).to_string(index=False))
    if args.write:
        vt.scored(pred).to_csv(vt.predicted_path(), index=False, float_format="%.6g")
        print(f"\nwrote {vt.predicted_path().relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
