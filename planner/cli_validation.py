"""``python -m planner validate`` and ``calibrate`` (registered through planner/cli.py EXTENSIONS_CORE)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from .errors import PlannerInputError

METRIC_UNITS = {"weights_bytes": "bytes", "kv_bytes": "bytes", "peak_bytes": "bytes"}


def _dirs(a) -> list[Path] | None:
    if not a.dir:
        return None
    p = Path(a.dir)
    if not p.exists():
        raise PlannerInputError("DIR", f"{p} does not exist", "give a measurement folder or CSV, or leave it out")
    return [p]


def _reference(a):
    if a.no_reference:
        return False
    if a.reference and not Path(a.reference).is_dir():
        raise PlannerInputError("reference", f"{a.reference} is not a folder", "point at a folder holding the reference CSVs (see profiles/reference/README.md)")
    return a.reference


def print_summary(s) -> None:
    """One line per source, metric and GPU: n, median and worst |error|, median signed error."""
    w = max([24, *(len(x) for x in s["source"])]) if len(s) else 24
    head = (f"{'source':{w}s} {'metric':14s} {'gpu':14s} {'n':>6s} {'med|err|%':>10s} {'p90|err|%':>10s} "
            f"{'worst|err|%':>12s} {'med err%':>9s} {'datasheet med|err|%':>20s} {'med err%':>9s}")
    print(head)
    print("-" * len(head))
    for r in s.itertuples(index=False):
        ds = r.datasheet_median_abs_error_pct
        ds_text = (f"{ds:20.1f} {r.datasheet_median_signed_error_pct:+9.1f}" if ds == ds  # NaN: no datasheet twin
                   else f"{'-':>20s} {'-':>9s}")
        print(f"{r.source:{w}s} {r.metric:14s} {r.gpu:14s} {r.n:6d} {r.median_abs_error_pct:10.1f} "
              f"{r.p90_abs_error_pct:10.1f} {r.worst_abs_error_pct:12.1f} {r.median_signed_error_pct:+9.1f} {ds_text}")
    print("\nerror = (predicted - measured) / measured; negative = the planner predicts less time or memory "
          "than measured. 'predicted' uses profiles/calibration.json where a GPU has one, else the datasheet; "
          "aic-silicon-* rows are the end-to-end runs of profiles/validation/e2e-<engine>.csv (benchmarks/bench_e2e.py), "
          "which have no datasheet twin; aic-silicon-screened: runs whose prompts need more GPU time than the run "
          "lasted (served from a cache), neither fitted on nor counted in the other aic-silicon rows.")


def register(sub, command):
    """Add ``validate`` and ``calibrate`` to the planner's sub-commands."""
    for name, text in (("validate", "join every measurement with the planner's prediction: signed and absolute "
                                    "error per metric (median, worst)"),
                       ("calibrate", "fit per GPU and engine the timing model's efficiencies and overheads "
                                     "(least squares) and, with --write, save them to profiles/calibration.json")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("dir", nargs="?", default=None,
                        help="measurement folder or CSV (default: every folder under profiles/measurements)")
        sp.add_argument("--reference", default=None, help="published reference-data folder "
                                                          "(default: the slices carried in profiles/reference)")
        sp.add_argument("--no-reference", action="store_true", help="leave the published reference data out")
        sp.add_argument("--json", action="store_true")
        if name == "validate":
            sp.add_argument("--csv", default=None, help="also write every joined row to this CSV")
        else:
            sp.add_argument("--gpu", default=None, help="only this GPU id (comma-separated for several)")
            sp.add_argument("--write", action="store_true", help="merge the fits into profiles/calibration.json")

    @command("validate")
    def _validate(a):
        from . import csvsafe
        from . import validate as val
        if a.csv:
            csvsafe.check_path(a.csv)
        df = val.validation_table(_dirs(a), _reference(a))
        if df.empty:
            raise PlannerInputError("DIR", "no measurements found", "run `python -m planner profile ...` first, "
                                                                   "or give --reference")
        if a.csv:
            csvsafe.write(df, a.csv)
        s = val.summary(df, by=("source", "metric", "gpu"))
        if a.json:
            return s.replace({np.nan: None}).to_dict(orient="records")
        print_summary(s)
        return None

    @command("calibrate")
    def _calibrate(a):
        from . import calibrate as cal
        gpus = [g.strip() for g in a.gpu.split(",")] if a.gpu else None
        fits = cal.calibrate(_dirs(a), _reference(a), gpus,
                             command="python -m planner " + shlex.join(sys.argv[1:]))
        if not fits:
            raise PlannerInputError("DIR", "nothing to fit: no GPU measurements and no reference data",
                                    "profile on a GPU, or give --reference")
        if a.write:
            path = cal.write(fits)
            print(f"wrote {path}", file=sys.stderr)
        if a.json:
            return fits
        for gpu, engines in fits.items():
            for engine, f in engines.items():
                print(f"{gpu} / {engine}: memory {f['memory']:.3f}  compute {f['compute']:.3f}  "
                      f"step_overhead {f['step_overhead_s'] * 1e6:.1f} us  layer_overhead {f['layer_overhead_s'] * 1e6:.1f} us"
                      f"  points {json.dumps(f['points'])}")
                print(f"    fitted from: {f['fitted_from']}")
                for metric, b in sorted(f["error_bands"].items()):
                    print(f"    band {metric:14s} +-{b['pct']:.1f} % from {b['n']} points")
        return None
