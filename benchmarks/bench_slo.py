"""Time of the SLO search over its whole default space (every bundled GPU x TP x format x KV dtype).

Run: ``python benchmarks/bench_slo.py`` from the repository root (``make bench`` runs it too).
Workload: 20 requests/s, 1024 prompt and 256 output tokens (fixed), TTFT p90 <= 1 s, TPOT p90 <= 50 ms.
Per model: the first search in this process (``cold``: measured-operator curves and tables built), then
the median of ``--runs`` searches after it (``warm``: what a dashboard or a second CLI query pays), the
candidates each tier saw, and the answer. Target: the dense 70B's warm search under 1 s on a 2-core
machine. A miss is printed as MISS; the script exits 0 (a measurement, not a test).

``--check-bound`` measures instead how optimistic the search's first tier is (planner/slo_bound.py): the
smallest ratio of a built plan's mean-value TTFT / TPOT / end-to-end latency (at every batch that fits)
to the bound's, on GPUs with measured operator tables before ``screen_optimism`` scales it (the figure
that sets it in profiles/kernels.json) and on the others as used (never below 1). Several minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import itertools  # noqa: E402

import numpy as np  # noqa: E402

from planner import api, profiles, slo, slo_bound, slo_space  # noqa: E402
from planner.errors import PlannerInputError  # noqa: E402
from planner.memory import Deployment  # noqa: E402
from planner.optables import SYSTEMS  # noqa: E402
from planner.serving import evaluate  # noqa: E402

MODELS = ("Llama-3.1-70B", "Qwen3-30B-A3B", "DeepSeek-V3")
BOUND_MODELS = ("Llama-3.1-8B", "Llama-3.1-70B", "Qwen3-30B-A3B", "DeepSeek-V3", "gemma-2-9b", "gpt-oss-20b",
                "Mixtral-8x7B-v0.1", "Qwen3-Next-80B-A3B-Instruct", "Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
                "Qwen3-235B-A22B-FP8", "DeepSeek-V2-Lite", "gemma-3-1b-it")
BOUND_WORKLOADS = ((1024, 256), (128, 2048), (8000, 200))
TARGET_MODEL, TARGET_S = "Llama-3.1-70B", 1.0
WORKLOAD = slo.Workload(request_rate_per_s=20, prompt_tokens=1024, output_tokens=256)
TARGETS = slo.Targets(ttft_s=1.0, tpot_s=0.050, percentile=90)


def search(model: str):
    """(wall seconds, CPU seconds of this process, the result). The search is single-threaded: on a shared
    machine its CPU time is what a machine of its own would take; the wall time is what it took here."""
    t0, c0 = time.perf_counter(), time.process_time()
    df = slo.plan_capacity(model, WORKLOAD, TARGETS, slo.Candidates())
    return time.perf_counter() - t0, time.process_time() - c0, df


def bound_ratios(models) -> dict:
    """{(metric, 'measured' | 'roofline'): (smallest mean-value / bound ratio, where)} over the default space."""
    worst: dict = {}
    for name in models:
        spec = api.resolve_model(name)
        for g in profiles.gpus().values():
            eff = api.efficiency_for(g.id, "paged")
            for tp, fmt, kvd in itertools.product(slo_space.tps_for(spec), slo_space.formats_for(spec, g),
                                                  slo_space.kv_dtypes_for(g)):
                dep = Deployment(weights=fmt, kv_dtype=kvd, tp=tp, max_num_seqs=256)
                tm, k = slo_bound.optimistic_timing(spec, g, dep, eff)
                kind = "measured" if k != 1.0 else "roofline"
                for p, o in BOUND_WORKLOADS:
                    if slo_bound.memory_batch_ub(spec, g, dep, p, o)[0] < 1:
                        continue
                    try:
                        plan = api.build_plan(spec, g.id, dep)
                    except PlannerInputError:
                        continue
                    mb = int(min(256, plan.memory.max_batch(p, o // 2)))
                    if mb < 1:
                        continue
                    b = np.arange(1, mb + 1, dtype=float)
                    real = evaluate(plan, b, p, o)
                    lb = slo_bound.latency_lb(tm, 1.0, b, p, o)
                    for metric, col in (("ttft", "ttft_s"), ("tpot", "tpot_s"), ("e2e", "e2e_latency_s")):
                        r = float(np.min(real[col] / lb[metric]))
                        if (metric, kind) not in worst or r < worst[(metric, kind)][0]:
                            worst[(metric, kind)] = (r, f"{name} on {g.id} TP {tp} {fmt} {kvd} KV, {p}/{o} tokens")
    return worst


def check_bound() -> None:
    models = [m for m in BOUND_MODELS if m in profiles.model_names()]
    t0 = time.perf_counter()
    worst = bound_ratios(models)
    print(f"{len(models)} models x {len(profiles.gpus())} GPUs x default formats, KV dtypes and TP x "
          f"{len(BOUND_WORKLOADS)} workloads, {time.perf_counter() - t0:.0f} s; measured-table GPUs: {', '.join(SYSTEMS)}")
    print(f"screen_optimism in profiles/kernels.json: {slo_bound.screen_optimism():g}")
    for (metric, kind), (r, where) in sorted(worst.items()):
        print(f"  {metric:4s} {kind:8s} smallest mean-value / bound = {r:.3f}  ({where})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed searches per model after the first")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--check-bound", action="store_true", help="measure the first tier's optimism instead")
    a = ap.parse_args()
    if a.check_bound:
        check_bound()
        return 0
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}; "
          f"{len(profiles.gpus())} GPU profiles; workload {WORKLOAD.request_rate_per_s:g} req/s, "
          f"{WORKLOAD.prompt_tokens}/{WORKLOAD.output_tokens} tokens, TTFT p90 <= {TARGETS.ttft_s:g} s, "
          f"TPOT p90 <= {TARGETS.tpot_s * 1e3:g} ms")
    for model in a.models.split(","):
        cold, cold_cpu, df = search(model)
        runs = [search(model) for _ in range(a.runs)]
        warm, warm_cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        s = df.attrs["search"]
        verdict = ""
        if model == TARGET_MODEL:
            verdict = f"  [target warm < {TARGET_S:g} s: {'ok' if min(warm, warm_cpu) < TARGET_S else 'MISS'}]"
        print(f"\n{model}: cold {cold:.2f} s wall / {cold_cpu:.2f} s CPU; warm (median of {a.runs}) {warm:.2f} s wall / "
              f"{warm_cpu:.2f} s CPU{verdict}")
        print(f"  {s['candidates']} candidates: {s['rejected_by_bound']} rejected by the bound, {s['built']} built, "
              f"{s['simulated']} simulated ({s['simulations']} runs)")
        print(f"  answer: {df.attrs['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
