"""Capacity planning against an SLO: the cheapest deployment that serves a workload within targets.

For every candidate (GPU type x TP degree x weight format x KV dtype):

1. Build the plan; an impossible one (TP that does not split the heads, a format the GPU cannot
   run) is rejected with the input error's message.
2. Mean-value screen (``serving.evaluate`` over every batch size that fits in memory at the
   workload's average KV occupancy): the largest batch whose mean TTFT, TPOT and end-to-end
   latency meet the targets sets a replica's throughput; replicas = ceil(rate / that
   throughput). A candidate whose batch-1 latency already misses a target is rejected
   (more replicas cannot make one request faster), naming the target it misses.
3. Simulation (``simulate.simulate``) of the cheapest survivors at rate / replicas per
   replica with ``max_num_seqs`` = that batch: the targets are checked at the requested
   percentile; a candidate that misses gets one more replica and is simulated again (up to
   ``max_extra_replicas`` times). Simulation goes on in cost order until ``simulate_top`` plans
   are confirmed and no unsimulated plan is cheaper than a confirmed one.

Ranking is by the deployment's $ per hour (= $ per 1M output tokens at the workload's rate),
then GPUs. Every rejected candidate stays in the table with its reason.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import api
from .errors import PlannerInputError, require_positive_int
from .memory import MAX_CONTEXT, Deployment
from .serving import evaluate
from .simulate import DISTRIBUTIONS, draw_lengths, simulate
from .spec import ModelSpec

PERCENTILES = (50, 90, 95, 99)
# Limits on what a request may ask for. A simulated request costs ~0.6 ms; up to 4 x simulate_top
# simulations of up to 1 + max_extra_replicas passes each run, so SIM_BUDGET bounds a search to minutes.
MAX_SLO_BATCH = 1 << 16          # max_num_seqs considered: the mean-value screen evaluates every batch up to it
MAX_SIMULATE_TOP = 20
MAX_SIM_REQUESTS = 10_000
SIM_BUDGET = 20_000              # simulate_top x sim_requests
MAX_CANDIDATES = 2_000           # GPUs x TP degrees x formats x KV dtypes: every bundled GPU, format and TP up to 8
MAX_EXTRA_REPLICAS = 16


@dataclass(frozen=True)
class Workload:
    request_rate_per_s: float
    prompt_tokens: int            # mean prompt length
    output_tokens: int            # mean output length
    distribution: str = "fixed"   # of both lengths: fixed, uniform (on [1, 2 mean - 1]) or exponential

    def __post_init__(self):
        rate = self.request_rate_per_s
        if isinstance(rate, bool) or not (isinstance(rate, int | float) and 0 < rate <= 1e6):
            raise PlannerInputError("request_rate", f"must be a positive number of requests per second up to 1e6, "
                                    f"got {self.request_rate_per_s!r}", "e.g. 5")
        require_positive_int("prompt", self.prompt_tokens, maximum=MAX_CONTEXT)
        require_positive_int("output", self.output_tokens, maximum=MAX_CONTEXT)
        if self.distribution not in DISTRIBUTIONS:
            raise PlannerInputError("distribution", f"unknown distribution {self.distribution!r}",
                                    f"choose one of {', '.join(DISTRIBUTIONS)}")


@dataclass(frozen=True)
class Targets:
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    percentile: int = 90

    def __post_init__(self):
        for name in ("ttft_s", "tpot_s", "e2e_s"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and v > 0 and math.isfinite(v)):
                raise PlannerInputError(name, f"must be a positive number of seconds, got {v!r}", "or leave it out")
        if self.percentile not in PERCENTILES:
            raise PlannerInputError("percentile", f"{self.percentile!r} is not offered",
                                    f"choose one of {', '.join(map(str, PERCENTILES))}")

    def items(self) -> list[tuple[str, float]]:
        return [(m, v) for m, v in (("ttft", self.ttft_s), ("tpot", self.tpot_s), ("e2e", self.e2e_s)) if v]


@dataclass(frozen=True)
class Candidates:
    gpus: tuple[str, ...]
    tps: tuple[int, ...] = (1,)
    weights: tuple[str, ...] = ()          # empty: the model's own format
    kv_dtypes: tuple[str, ...] = ("bf16",)
    engine: str = "paged"
    max_batch: int = 256                   # the largest max_num_seqs to consider
    max_gpus: int = 4096                   # reject plans needing more GPUs in all
    simulate_top: int = 5                  # simulate this many of the cheapest survivors
    max_extra_replicas: int = 4
    sim_requests: int = 1000
    seed: int = 0

    def __post_init__(self):
        for name, high in (("max_batch", MAX_SLO_BATCH), ("max_gpus", 1 << 20), ("simulate_top", MAX_SIMULATE_TOP),
                           ("sim_requests", MAX_SIM_REQUESTS)):
            require_positive_int(name, getattr(self, name), maximum=high)
        require_positive_int("max_extra_replicas", self.max_extra_replicas, maximum=MAX_EXTRA_REPLICAS, allow_zero=True)
        require_positive_int("seed", self.seed, maximum=2**32 - 1, allow_zero=True)
        if self.simulate_top * self.sim_requests > SIM_BUDGET:
            raise PlannerInputError("sim_requests", f"{self.simulate_top} simulations x {self.sim_requests:,} requests "
                                    f"is over the budget of {SIM_BUDGET:,} simulated requests",
                                    f"lower sim_requests to {SIM_BUDGET // self.simulate_top:,} or simulate fewer plans")
        self._check_lists()

    def _check_lists(self) -> None:
        for name in ("gpus", "tps", "weights", "kv_dtypes"):
            if not isinstance(getattr(self, name), tuple):
                raise PlannerInputError(name, "must be a tuple", f"pass {name} as a tuple")
        for t in self.tps:
            require_positive_int("tp", t, maximum=1024)
        n = len(self.gpus) * len(self.tps) * max(1, len(self.weights)) * len(self.kv_dtypes)
        if n > MAX_CANDIDATES:
            raise PlannerInputError("candidates", f"{n:,} GPU x TP x format x KV dtype combinations, over the limit "
                                    f"of {MAX_CANDIDATES:,}", "list fewer GPUs, TP degrees, formats or KV dtypes")


def _mean_column(metric: str) -> str:
    return {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_latency_s"}[metric]


def _screen(spec: ModelSpec, gpu: str, tp: int, fmt: str, kvd: str, wl: Workload, tg: Targets,
            cand: Candidates) -> dict:
    row = {"gpu": gpu, "tp": tp, "weights": fmt, "kv_dtype": kvd, "engine": cand.engine}
    try:
        plan = api.build_plan(spec, gpu, Deployment(weights=fmt, kv_dtype=kvd, engine=cand.engine, tp=tp,
                                                    max_num_seqs=cand.max_batch))
    except PlannerInputError as e:
        return {**row, "status": "rejected", "failed": "input", "reason": str(e)}
    p, o = wl.prompt_tokens, wl.output_tokens
    mm = plan.memory
    row.update(gpu=mm.gpu.id, gpus_per_replica=plan.gpus_per_replica, provenance=plan.provenance,
               price_usd_per_gpu_hour=mm.gpu.price_usd_per_hour)
    if not mm.gpu.price_usd_per_hour:
        return {**row, "status": "rejected", "failed": "price", "reason": f"{mm.gpu.id} has no price in its profile"}
    max_b = int(min(cand.max_batch, mm.max_batch(p, o // 2)))  # average occupancy under continuous batching
    if max_b < 1:
        one = mm.plan(1, p, o)
        return {**row, "status": "rejected", "failed": "memory",
                "reason": f"memory: one request of {p}+{o} tokens needs {float(one['total_bytes']) / 2**30:.1f} GiB per GPU, "
                          f"{float(one['capacity_bytes']) / 2**30:.1f} GiB available (add TP, quantize weights or KV)"}
    b = np.arange(1, max_b + 1)
    m = evaluate(plan, b, p, o)
    ok = np.ones(b.size, dtype=bool)
    for metric, target in tg.items():
        ok &= m[_mean_column(metric)] <= target
    if not ok[0]:
        misses = [f"{metric.upper()} {float(m[_mean_column(metric)][0]):.3g} s > {target:g} s"
                  for metric, target in tg.items() if m[_mean_column(metric)][0] > target]
        failed = next(mt for mt, tv in tg.items() if m[_mean_column(mt)][0] > tv)
        return {**row, "status": "rejected", "failed": failed,
                "reason": "latency at batch 1 (mean): " + ", ".join(misses) + "; more replicas cannot help "
                      "(a faster GPU, more TP or a smaller format can)"}
    best = int(np.nonzero(ok)[0][-1])  # latencies grow with batch, so the last passing batch serves the most
    rps = float(m["requests_per_s"][best])
    replicas = max(1, math.ceil(wl.request_rate_per_s / rps))
    row.update(status="screened", batch=int(b[best]), max_batch_memory=max_b, replicas=replicas,
               requests_per_s_per_replica=rps, mean_ttft_s=float(m["ttft_s"][best]),
               mean_tpot_s=float(m["tpot_s"][best]), mean_e2e_s=float(m["e2e_latency_s"][best]),
               latency_headroom=float(min(1 - m[_mean_column(mt)][best] / v for mt, v in tg.items())),
               kv_capacity_bytes=mm.kv_budget_bytes(), _plan=plan)
    return row


def _cost(row: dict, wl: Workload) -> None:
    row["gpus_total"] = row["replicas"] * row["gpus_per_replica"]
    row["usd_per_hour"] = row["gpus_total"] * row["price_usd_per_gpu_hour"]
    row["cost_usd_per_1m_output_tokens"] = row["usd_per_hour"] / (wl.request_rate_per_s * wl.output_tokens * 3600) * 1e6
    row["cost_usd_per_1m_requests"] = row["usd_per_hour"] / (wl.request_rate_per_s * 3600) * 1e6
    row["capacity_headroom"] = 1 - wl.request_rate_per_s / (row["replicas"] * row["requests_per_s_per_replica"])


def _simulate(row: dict, wl: Workload, tg: Targets, cand: Candidates) -> None:
    rng = np.random.default_rng(cand.seed)
    n = cand.sim_requests
    prompts = draw_lengths(wl.prompt_tokens, wl.distribution, n, rng)
    outputs = draw_lengths(wl.output_tokens, wl.distribution, n, rng)
    plan = row["_plan"]
    for extra in range(cand.max_extra_replicas + 1):
        replicas = row["replicas"]
        res = simulate(plan.timing, wl.request_rate_per_s / replicas, prompts, outputs, row["kv_capacity_bytes"],
                       max_num_seqs=row["batch"], seed=cand.seed)
        q = tg.percentile
        for metric in ("ttft", "tpot", "e2e"):
            row[f"sim_{metric}_p{q}_s"] = res.percentile(metric, q) if res.stable else float("inf")
        row.update(sim_mean_running=res.mean_running, sim_preemptions=res.preemptions, sim_stable=res.stable)
        misses = [f"p{q} {metric.upper()} {row[f'sim_{metric}_p{q}_s']:.3g} s > {target:g} s"
                  for metric, target in tg.items() if row[f"sim_{metric}_p{q}_s"] > target]
        row["latency_headroom"] = min(1 - row[f"sim_{m}_p{q}_s"] / v for m, v in tg.items())
        if res.stable and not misses:
            row["status"] = "meets"
            row.pop("failed", None)
            row["reason"] = "" if not extra else f"needed {extra} more replica(s) than the mean-value estimate"
            return
        row["failed"] = "unstable" if not res.stable else misses[0].split()[1].lower()
        row["reason"] = ("queue grows without bound at this rate" if not res.stable else "; ".join(misses))
        if extra < cand.max_extra_replicas:
            row["replicas"] += 1
            _cost(row, wl)
    row["status"] = "rejected"
    row["reason"] = f"simulated with up to {row['replicas']} replicas: {row['reason']}"


def plan_capacity(model: str | ModelSpec, workload: Workload, targets: Targets, candidates: Candidates) -> pd.DataFrame:
    """Every candidate, those that meet the targets first, cheapest first; rejected ones with the reason."""
    if not targets.items():
        raise PlannerInputError("targets", "no latency target given", "set at least one of TTFT, TPOT or end-to-end")
    if not candidates.gpus:
        raise PlannerInputError("gpus", "no candidate GPU types", "choose at least one GPU")
    spec = api.resolve_model(model)
    weights = candidates.weights or (api.default_weights(spec),)
    rows = [_screen(spec, g, int(tp), f, k, workload, targets, candidates)
            for g, tp, f, k in itertools.product(candidates.gpus, candidates.tps, weights, candidates.kv_dtypes)]
    screened = [r for r in rows if r["status"] == "screened"]
    for r in screened:
        _cost(r, workload)
        if r["gpus_total"] > candidates.max_gpus:
            r.update(status="rejected", failed="size", reason=f"needs {r['gpus_total']} GPUs, over the limit of "
                                                              f"{candidates.max_gpus}")
    screened = sorted((r for r in screened if r["status"] == "screened"),
                      key=lambda r: (r["usd_per_hour"], r["gpus_total"], -r["requests_per_s_per_replica"]))
    # Simulate in cost order until `simulate_top` plans are confirmed and no unsimulated plan is
    # cheaper than the dearest confirmed one (a simulation may add replicas, so a confirmed plan can
    # cost more than it did on the screen); at most 4 x simulate_top simulations.
    confirmed: list[float] = []
    pending = list(screened)
    sims = 0
    while pending and sims < 4 * candidates.simulate_top and (
            len(confirmed) < candidates.simulate_top or pending[0]["usd_per_hour"] < max(confirmed)):
        r = pending.pop(0)
        _simulate(r, workload, targets, candidates)
        sims += 1
        if r["status"] == "meets":
            confirmed.append(r["usd_per_hour"])
    for r in pending:
        r["status"] = "meets (mean-value)"
        r["reason"] = "not simulated: meets the targets in the mean-value model"
    for r in rows:
        r.pop("_plan", None)
    df = pd.DataFrame(rows)
    order = {"meets": 0, "meets (mean-value)": 1, "rejected": 2}
    df["_rank"] = df["status"].map(order).fillna(3)
    if "usd_per_hour" not in df:
        df["usd_per_hour"] = np.nan
    if "requests_per_s_per_replica" not in df:
        df["requests_per_s_per_replica"] = np.nan
    df["_neg_rps"] = -df["requests_per_s_per_replica"]
    df = df.sort_values(["_rank", "usd_per_hour", "_neg_rps"], na_position="last").drop(columns="_neg_rps").drop(columns="_rank").reset_index(drop=True)
    for c in ("replicas", "gpus_total", "batch", "max_batch_memory", "gpus_per_replica", "sim_preemptions"):
        if c in df:
            df[c] = df[c].astype("Int64")
    df.attrs["workload"] = asdict(workload)
    df.attrs["targets"] = asdict(targets)
    return df
