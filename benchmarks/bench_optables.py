"""How well the measured operator tables (planner/optables.py) predict a point they did not see.

    .venv/bin/python benchmarks/bench_optables.py [--gpu H100-SXM,...] [--engine vllm,sglang] [--csv rows.csv]

Leave one out along the size axis of every carried table (GEMM m, decode-attention and MLA-decode
context, prefill-attention and MLA-prefill isl, MoE tokens, all-reduce message size): each interior
value of that axis is held out in turn (every row at that value), the table is rebuilt from the
rest with the module's own rules (monotone envelope, fill, log-log interpolation) and the held-out
rows are predicted. The planner's per-kernel roofline is scored on the same rows:
``max(FLOPs / (peak x compute), bytes / (bw x memory)) + fixed`` with the GPU's calibration from
profiles/calibration.json where it has one, else the datasheet defaults (validate.efficiency,
validate.kernel_latency); all-reduce: ring bytes / link + ``allreduce_latency_s`` (timing.comm_s).
A second table holds out whole MoE shapes (bf16; each predicted from the nearest other shape).
SGLang's own tables (H100 / H200) are scored the same way, their rows marked ``[sglang]``.
``error = (predicted - measured) / measured``; the figures are |error| in %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner import csvsafe, optables, profiles  # noqa: E402
from planner import validate as val  # noqa: E402
from planner.opgrid import LogGrid  # noqa: E402

ATTENTION_FAMILY = ("generation_attention", "context_attention", "mla_generation_module", "mla_context_module",
                    "mla_generation", "mla_context")
CONTEXT = ("context_attention", "mla_context_module", "mla_context")


def variants(op: str, d: pd.DataFrame, engine: str = "vllm") -> list[str]:
    if op == "moe":
        have = set(d["distribution"])
        return ["balanced"] if "balanced" in have else ["power_law_1.01"]
    if op == "mla_bmm":
        return sorted(set(d["op_name"]))
    if op.endswith("_module"):
        return sorted(set(d["gemm_type"]))
    return [f"{engine}_graph"] if op == "allreduce" else [""]


def planner_roofline_s(gpu_id: str, op: str, roof, cols: dict, cal: dict) -> np.ndarray:
    """The planner's per-kernel prediction for the same calls (see the module docstring)."""
    eff = val.efficiency(cal, gpu_id, "paged")
    flops, bytes_ = roof.counts(cols)
    if op == "allreduce":
        return bytes_ / roof.bandwidth_bytes_per_s + eff.allreduce_latency_s
    compute = eff.attention_compute or eff.compute if op in CONTEXT else eff.compute
    fixed = val.kernel_latency(cal, gpu_id, eff)["attention" if op in ATTENTION_FAMILY else "gemm"]
    return np.maximum(flops / (roof.peak_flops * compute), bytes_ / (roof.bandwidth_bytes_per_s * eff.memory)) + fixed


def loo_table(gpu, op: str, dtype: str, d: pd.DataFrame, variant: str, cal: dict) -> pd.DataFrame:
    """Every interior value of the size axis held out in turn; one row per held-out measurement."""
    shapes = optables.moe_shapes(d[d["distribution"] == variant]) if op == "moe" else None
    cols, s = optables.table_columns(op, d, variant, shapes)
    roof = optables.op_roofline(gpu, op, dtype, variant, shapes)
    size = optables.TABLES[op].size_axes[0]
    axes = tuple(cols)
    pred = np.full(len(s), np.nan)
    for v in np.unique(cols[size])[1:-1]:
        test = cols[size] == v
        grid = LogGrid.build({a: c[~test] for a, c in cols.items()}, s[~test], axes, optables.TABLES[op].size_axes, roof)
        pred[test] = grid(**{a: c[test] for a, c in cols.items()})[0]
    keep = ~np.isnan(pred)
    base = planner_roofline_s(gpu.id, op, roof, {a: c[keep] for a, c in cols.items()}, cal)
    return pd.DataFrame({"gpu": gpu.id, "op": op, "dtype": dtype + (f"/{variant}" if variant else ""),
                         "measured": s[keep], "table": pred[keep], "roofline": base})


def shape_out_table(gpu, d: pd.DataFrame, variant: str, cal: dict) -> pd.DataFrame:
    """MoE bf16: each measured shape predicted from the nearest other shape (optables.moe_transfer)."""
    shapes = optables.moe_shapes(d[d["distribution"] == variant])
    cols, s = optables.table_columns("moe", d, variant, shapes)
    frames = []
    for i in range(len(shapes)):
        own = cols["shape_id"] == i + 1
        others = np.delete(shapes, i, axis=0)
        sid = cols["shape_id"][~own] - (cols["shape_id"][~own] > i + 1)
        roof = optables.op_roofline(gpu, "moe", "bf16", variant, others)
        grid = LogGrid.build({"tokens": cols["tokens"][~own], "shape_id": sid}, s[~own], ("tokens", "shape_id"),
                             ("tokens",), roof)
        pred = optables.moe_transfer(gpu, "bf16", grid, others, shapes[i:i + 1], cols["tokens"][own])[0]
        own_roof = optables.op_roofline(gpu, "moe", "bf16", variant, shapes)
        base = planner_roofline_s(gpu.id, "moe", own_roof, {"tokens": cols["tokens"][own],
                                                            "shape_id": cols["shape_id"][own]}, cal)
        frames.append(pd.DataFrame({"gpu": gpu.id, "op": "moe shape held out", "dtype": f"bf16/{variant}",
                                    "measured": s[own], "table": pred, "roofline": base}))
    return pd.concat(frames, ignore_index=True)


def summarise(rows: pd.DataFrame, by=("op", "dtype", "gpu")) -> pd.DataFrame:
    e_t = (rows["table"] / rows["measured"] - 1).abs() * 100
    e_r = (rows["roofline"] / rows["measured"] - 1) * 100
    g = rows.assign(e_t=e_t, e_r=e_r, a_r=e_r.abs()).groupby(list(by), sort=True)
    return pd.DataFrame({"n": g.size(), "table_med": g["e_t"].median(), "table_p90": g["e_t"].quantile(0.9),
                         "roof_med": g["a_r"].median(), "roof_p90": g["a_r"].quantile(0.9),
                         "roof_signed": g["e_r"].median()}).reset_index()


def print_table(summary: pd.DataFrame) -> None:
    print(f"{'op':24s} {'dtype':26s} {'gpu':14s} {'n':>7s}  {'LOO med|err|':>12s} {'p90':>6s}  "
          f"{'roofline med|err|':>17s} {'p90':>6s} {'med err':>8s}")
    for r in summary.itertuples():
        print(f"{r.op:24s} {r.dtype:26s} {r.gpu:14s} {r.n:7d}  {r.table_med:11.1f}% {r.table_p90:5.1f}%  "
              f"{r.roof_med:16.1f}% {r.roof_p90:5.1f}% {r.roof_signed:+7.1f}%")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", default=",".join(optables.SYSTEMS))
    ap.add_argument("--engine", default=",".join(optables.ENGINES), help="whose tables (SGLang's: H100 / H200 only)")
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    cal = profiles.load_calibrations()
    parts = []
    for engine in a.engine.split(","):
        for gpu_id in a.gpu.split(","):
            tables = optables.OpTables.load(gpu_id, engine)
            label = "" if engine == "vllm" else f" [{engine}]"
            for op, dtype, _, _ in tables.files if tables else ():
                d = tables.table(op, dtype)
                got = [loo_table(tables.gpu, op, dtype, d, v, cal) for v in variants(op, d, engine)]
                if op == "moe" and dtype == "bf16":
                    got.append(shape_out_table(tables.gpu, d, variants(op, d)[0], cal))
                parts += [g.assign(dtype=g["dtype"] + label) for g in got]
    rows = pd.concat(parts, ignore_index=True)
    summary = summarise(rows)
    print_table(summary)
    print("\nall GPUs and dtypes together:")
    engine = rows["dtype"].str.extract(r"( \[\w+\])$", expand=False).fillna("")  # vLLM's rows unmarked
    print_table(summarise(rows.assign(dtype="all" + engine, gpu="all")))
    print(f"\n{len(rows):,} held-out points, {len(summary)} tables ({time.perf_counter() - t0:.1f} s)")
    if a.csv:
        csvsafe.to_csv(rows, a.csv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
