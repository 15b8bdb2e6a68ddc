"""The planner against published serving runs that no fit has seen (planner/validate_external.py).

Run: ``python benchmarks/bench_external.py`` from the repository root (~2 min on 2 cores). Every run of
profiles/validation/external-serving.csv (engine issues and pull requests, vendor and cloud benchmark pages,
open benchmark repositories; profiles/validation/external-serving.md) is predicted as ``plan`` would answer a
user who typed its model, GPU, engine, release, TP, precision, flags and traffic, and scored: median / p90
|error|, the signed median, and the share of runs inside the band the plan prints, per engine, by load and
by timing source (the measured operator tables or the calibrated roofline). ``--write`` saves every scored run and metric to
profiles/validation/external-serving-predicted.csv (the dashboard's Validation page reads it); ``--rows``
prints them; ``--in-flight`` the requests decoding at once, printed against simulated. A measurement, not a test: it exits 0 whatever the errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from planner import validate_external as ve  # noqa: E402

PREDICTED = ve.predicted_path()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"save the joined rows to {PREDICTED.relative_to(ROOT)}")
    ap.add_argument("--rows", action="store_true", help="print every scored row")
    ap.add_argument("--in-flight", action="store_true",
                    help="requests decoding at once, printed (Little's law) against simulated, for the runs sent all "
                         "at once (validate_external.in_flight)")
    args = ap.parse_args(argv)
    d = ve.rows()
    t0 = time.perf_counter()
    pred = ve.predict(d)
    err = ve.errors(pred)
    took = time.perf_counter() - t0
    sources = d["source_url"].str.replace(r"/blob/.*", "", regex=True).nunique()
    print(f"== {len(d)} published runs from {sources} sources, predicted in {took:.0f} s; never fitted on")
    missed = pred[pred["why"].fillna("") != ""]
    long = ve.scored(pred, err)
    s = ve.summary(long)
    pd.set_option("display.width", 200)
    cols = ["engine", "group", "ttft_n", "ttft_median", "ttft_p90", "ttft_signed", "ttft_in_band",
            "tpot_n", "tpot_median", "tpot_p90", "tpot_signed", "tpot_in_band"]
    show = s[cols].copy()
    for c in cols[2:]:
        if c.endswith("_in_band"):
            show[c] = (s[c] * 100).map(lambda v: f"{v:.0f}%" if v == v else "")
        elif not c.endswith("_n"):
            fmt = "{:+.1f}" if c.endswith("signed") else "{:.1f}"
            show[c] = s[c].map(lambda v, f=fmt: f.format(v) if v == v else "")
    print("median / p90 |error| % and signed median % (predicted - measured) / measured; in_band: inside the plan's band")
    print(show.to_string(index=False))
    print(f"\nnot predicted: {len(missed)} of {len(d)}")
    for why, g in missed.groupby(missed["why"].str.replace(r"\d[\d,.]*", "N", regex=True)):
        print(f"  {len(g):3d}  {why[:150]}")
    if args.rows:
        w = err.pivot_table(index="id", columns="metric", values=["measured_ms", "predicted_ms", "error_pct"])
        w.columns = [f"{m}_{v}" for v, m in w.columns]
        print(w.round(1).to_string())
    if args.in_flight:
        f = ve.in_flight(pred)
        print("\nrequests decoding at once, time-averaged: printed (Little's law on the run's figures) / simulated")
        print(f.round(2).to_string(index=False))
        for dataset, g in f.groupby("dataset"):
            print(f"  {dataset}: median ratio {g['ratio'].median():.2f} over {len(g)} runs "
                  f"({g['ratio'].min():.2f}-{g['ratio'].max():.2f})")
    if args.write:
        long.to_csv(PREDICTED, index=False, float_format="%.6g")
        print(f"\nwrote {PREDICTED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
