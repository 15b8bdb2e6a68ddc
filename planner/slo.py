"""Capacity planning against an SLO: the cheapest deployment that serves a workload within targets.

The candidates are every GPU type x TP (x PP where one node cannot hold the weights) x weight format
x KV dtype of ``Candidates``; an empty axis means the whole default space (planner/slo_space.py).
The search runs in three tiers, each dearer than the last, and goes to the next tier only for
plans that can still win:

1. **Bound** (planner/slo_bound.py, no plan built): memory, latency at batch 1 and the cost of the
   replicas the rate needs, all from an optimistic roofline. A candidate that cannot fit, cannot
   meet a latency target even alone, or needs more GPUs than allowed is rejected with the reason;
   the others get ``usd_per_hour_lower_bound``.
2. **Mean-value** (``api.build_plan`` with the serving engine, then ``serving.evaluate`` over every
   batch size that fits at the workload's average KV occupancy): the largest batch whose mean TTFT,
   TPOT and end-to-end latency meet the targets sets a replica's throughput; replicas =
   ceil(rate / that throughput). Plans are built in order of their lower bound, and only while a
   lower bound is below the cost of the plans already confirmed.
3. **Simulation** (``simulate.simulate`` with the engine's scheduler profile and start-up KV pool)
   of the cheapest plan at rate / replicas per replica with ``max_num_seqs`` = that batch: targets
   are checked at the requested percentile. A miss adds a replica (up to ``max_extra_replicas``)
   and puts the plan back in cost order. The search stops once ``simulate_top`` plans are confirmed
   and no plan left, built or not, could be cheaper than the dearest of them.

Tiers 2 and 3 and the branch and bound over them live in planner/slo_search.py.

Ranking is by the deployment's $ per hour (= $ per 1M output tokens at the workload's rate),
then GPUs. Every candidate stays in the table: confirmed (``meets``), built but not simulated
(``meets (mean-value)``), or ``rejected`` with ``failed`` and ``reason``; a plan that cannot be
cheaper than those found is rejected with ``failed = cost``. A rate no candidate sustains within
``max_gpus`` is said so, with the most each sustains; an unstable queue never shows a finite TTFT.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import api, profiles, slo_bound, slo_space
from . import slo_search as search
from .errors import PlannerInputError, require_positive_int
from .memory import MAX_BATCH, MAX_CONTEXT, SERVERS, Deployment
from .simulate import DISTRIBUTIONS, capped_mean
from .spec import ModelSpec

PERCENTILES = (50, 90, 95, 99)
# Limits on what a request may ask for. A simulated request costs ~0.3-1 ms; a search runs at most
# 4 x simulate_top x (1 + max_extra_replicas) simulations, so SIM_BUDGET bounds a search to minutes.
MAX_SLO_BATCH = 1 << 16          # max_num_seqs considered: the mean-value screen evaluates every batch up to it
MAX_SIMULATE_TOP = 20
MAX_SIM_REQUESTS = 10_000
SIM_BUDGET = 20_000              # simulate_top x sim_requests
MAX_CANDIDATES = 2_000           # GPUs x TP degrees x formats x KV dtypes: every bundled GPU, format and TP up to 8
MAX_EXTRA_REPLICAS = 16


@dataclass(frozen=True)
class Workload:
    """The traffic a deployment serves: Poisson arrivals at ``request_rate_per_s`` (open loop: what the
    SLO search sizes a deployment for), or ``batch`` clients in a closed loop, each sending its next
    request when the last one ends (a plan: planner/request.py, a benchmark at fixed concurrency)."""

    request_rate_per_s: float | None
    prompt_tokens: int            # mean prompt length
    output_tokens: int            # mean output length
    distribution: str = "fixed"   # of both lengths: fixed, uniform (on [1, 2 mean - 1]) or exponential
    batch: int | None = None      # closed loop: concurrent requests per replica
    max_tokens: int | None = None  # the max-length cap: outputs stop here (None: at EOS, the drawn length)

    def __post_init__(self):
        rate = self.request_rate_per_s
        if rate is not None and (isinstance(rate, bool) or not (isinstance(rate, int | float) and 0 < rate <= 1e6)):
            raise PlannerInputError("request_rate", f"must be a positive number of requests per second up to 1e6, "
                                    f"got {self.request_rate_per_s!r}", "e.g. 5")
        require_positive_int("prompt", self.prompt_tokens, maximum=MAX_CONTEXT)
        require_positive_int("output", self.output_tokens, maximum=MAX_CONTEXT)
        if self.distribution not in DISTRIBUTIONS:
            raise PlannerInputError("distribution", f"unknown distribution {self.distribution!r}",
                                    f"choose one of {', '.join(DISTRIBUTIONS)}")
        if self.batch is not None:
            require_positive_int("batch", self.batch, maximum=MAX_BATCH)
        elif rate is None:
            raise PlannerInputError("workload", "has neither a request rate nor a batch",
                                    "give request_rate_per_s (open loop) or batch (closed loop)")
        if self.max_tokens is not None:
            require_positive_int("max_tokens", self.max_tokens, maximum=MAX_CONTEXT)

    @property
    def mean_output_tokens(self) -> int:
        """The mean output the cap leaves (simulate.capped_mean), whole tokens: what the mean-value model,
        the roofline bound and the cost per token use."""
        return max(1, round(capped_mean(self.output_tokens, self.distribution, self.max_tokens)))


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
    """The deployments to consider. An empty tuple on an axis searches that axis's default space
    (planner/slo_space.py): every bundled GPU; TP 1, 2, 4, 8 that split the heads (PP only where one
    node cannot hold the weights); bf16, fp8 and fp8-block where the GPU has fp8, and the checkpoint's
    own format; bf16 KV, and fp8 KV where the GPU has fp8. ``server`` / ``server_version`` name the
    serving engine of a paged deployment (None: its newest release)."""

    gpus: tuple[str, ...] = ()
    tps: tuple[int, ...] = ()
    weights: tuple[str, ...] = ()
    kv_dtypes: tuple[str, ...] = ()
    pps: tuple[int, ...] = ()
    engine: str = "paged"
    server: str = "vllm"
    server_version: str | None = None
    max_batch: int = 256                   # the largest max_num_seqs to consider
    max_gpus: int = 4096                   # reject plans needing more GPUs in all
    simulate_top: int = 1                  # confirm this many of the cheapest plans by simulation
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
        if self.server not in SERVERS:
            raise PlannerInputError("server", f"unknown serving engine {self.server!r}", f"choose one of {', '.join(SERVERS)}")
        self._check_lists()

    def _check_lists(self) -> None:
        for name in ("gpus", "tps", "weights", "kv_dtypes", "pps"):
            if not isinstance(getattr(self, name), tuple):
                raise PlannerInputError(name, "must be a tuple", f"pass {name} as a tuple")
        for t in self.tps:
            require_positive_int("tp", t, maximum=1024)
        for p in self.pps:
            require_positive_int("pp", p, maximum=1024)
        n = slo_space.space_size(len(self.gpus), len(self.tps), len(self.weights), len(self.kv_dtypes)) * max(1, len(self.pps))
        if n > MAX_CANDIDATES:
            raise PlannerInputError("candidates", f"{n:,} GPU x TP x format x KV dtype combinations, over the limit "
                                    f"of {MAX_CANDIDATES:,}", "list fewer GPUs, TP degrees, formats or KV dtypes")

    def deployment(self, row: dict) -> Deployment:
        return Deployment(weights=row["weights"], kv_dtype=row["kv_dtype"], engine=self.engine, tp=row["tp"],
                          pp=row["pp"], max_num_seqs=self.max_batch, server=self.server,
                          server_version=self.server_version)


def _bound(spec: ModelSpec, row: dict, wl: Workload, tg: Targets, cand: Candidates, effs: dict) -> dict:
    """Tier 1: reject what cannot work even at its best; else the lower bound of its cost."""
    g = profiles.gpu(row["gpu"])
    if g.id not in effs:
        effs[g.id] = api.efficiency_for(g.id, cand.engine)
    b = slo_bound.bound(spec, g, cand.deployment(row), effs[g.id], wl.request_rate_per_s, wl.prompt_tokens,
                        wl.mean_output_tokens, tg.items(), cand.max_batch)
    row["gpus_per_replica"] = b["gpus_per_replica"]
    if "failed" in b:
        return search.reject(row, b["failed"], b["reason"])
    row.update(requests_per_s_upper_bound=b["requests_per_s_ub"], usd_per_hour_lower_bound=b["usd_per_hour_lb"])
    if b["replicas_lb"] * b["gpus_per_replica"] > cand.max_gpus:
        most = cand.max_gpus // b["gpus_per_replica"] * b["requests_per_s_ub"]
        why = (f"needs at least {b['replicas_lb'] * b['gpus_per_replica']:,} GPUs (roofline bound), over the limit "
               f"of {cand.max_gpus:,}: {cand.max_gpus:,} GPUs sustain at most {most:.3g} requests/s")
        return search.reject(row, "size", why, sustainable_rate_per_s=most)
    return row


def _row(pt: slo_space.Point, cand: Candidates, version: str) -> dict:
    paged = cand.engine == "paged"
    row = {"gpu": pt.gpu, "tp": pt.tp, "pp": pt.pp, "weights": pt.weights, "kv_dtype": pt.kv_dtype,
           "engine": cand.engine, "server": cand.server if paged else "", "server_version": version if paged else "",
           "gpus_per_replica": pt.tp * pt.pp, "price_usd_per_gpu_hour": profiles.gpu(pt.gpu).price_usd_per_hour,
           "evaluated_by": "bound", "status": "screened", "note": pt.note}
    return search.reject(row, "input", pt.error) if pt.error else row


def _server_version(cand: Candidates) -> str:
    """The release the search plans for (the newest in profiles/engines unless named); a bad one is refused."""
    if cand.engine != "paged":
        return ""
    _, v, _ = profiles.engine_table(cand.server).resolve(cand.server_version)
    return str(v)


def plan_capacity(model: str | ModelSpec, workload: Workload, targets: Targets, candidates: Candidates) -> pd.DataFrame:
    """Every candidate, those that meet the targets first, cheapest first; rejected ones with the reason.

    ``df.attrs``: ``workload``, ``targets``, ``search`` (how many candidates each tier saw) and
    ``verdict`` (one line: the best plan, or why there is none)."""
    if workload.request_rate_per_s is None:
        raise PlannerInputError("request_rate", "the SLO search sizes a deployment for a request rate",
                                "give request_rate_per_s (requests per second)")
    if not targets.items():
        raise PlannerInputError("targets", "no latency target given", "set at least one of TTFT, TPOT or end-to-end")
    spec = api.resolve_model(model)
    version = _server_version(candidates)
    # "auto": the cache the serving engine allocates for this checkpoint (api.auto_kv_dtype), so that the bound,
    # the plans and the table count and name the same cache
    paged = candidates.engine == "paged"
    kv_dtypes = tuple(dict.fromkeys(
        api.auto_kv_dtype(spec, candidates.server if paged else "transformers", version)[0] if k == "auto" else k
        for k in candidates.kv_dtypes))
    pts, whole = slo_space.points(spec, candidates.gpus, candidates.tps, candidates.pps, candidates.weights,
                                  kv_dtypes)
    if not pts and not whole:
        raise PlannerInputError("gpus", "no candidate GPU types", "choose at least one GPU")
    rows = [{"gpu": g, "status": "rejected", "failed": "price" if "price" in why else "input", "reason": why,
             "evaluated_by": "bound"} for g, why in whole]
    alive, effs = [], {}
    for pt in pts:
        r = _row(pt, candidates, version)
        rows.append(r)
        if r["status"] == "screened" and _bound(spec, r, workload, targets, candidates, effs)["status"] == "screened":
            alive.append(r)
    run = search.Search(spec, alive, workload, targets, candidates)
    run.run()
    df = _frame(rows, workload, targets)
    df.attrs["search"] = {"candidates": len(rows), "rejected_by_bound": len(rows) - len(alive),
                          "built": run.built, "simulated": len(run.simulated), "simulations": run.simulations}
    df.attrs["verdict"] = verdict(df, workload, candidates)
    return df


def _frame(rows: list[dict], wl: Workload, tg: Targets) -> pd.DataFrame:
    for r in rows:
        for k in [k for k in r if k.startswith("_")]:
            del r[k]
    df = pd.DataFrame(rows)
    for c in ("usd_per_hour", "requests_per_s_per_replica", "usd_per_hour_lower_bound", "sustainable_rate_per_s"):
        if c not in df:
            df[c] = np.nan
    df["_rank"] = df["status"].map({"meets": 0, "meets (mean-value)": 1, "rejected": 2}).fillna(3)
    df["_neg_rps"] = -df["requests_per_s_per_replica"]
    df["_neg_sustained"] = -df["sustainable_rate_per_s"]  # with no plan, the candidates that come closest first
    df = (df.sort_values(["_rank", "usd_per_hour", "_neg_rps", "_neg_sustained", "usd_per_hour_lower_bound"],
                         na_position="last").drop(columns=["_rank", "_neg_rps", "_neg_sustained"]).reset_index(drop=True))
    for c in ("tp", "pp", "replicas", "gpus_total", "batch", "max_batch_memory", "gpus_per_replica", "sim_preemptions",
              "sim_replicas"):
        if c in df:
            df[c] = df[c].astype("Int64")
    df.attrs["workload"] = asdict(wl)
    df.attrs["targets"] = asdict(tg)
    return df


def verdict(df: pd.DataFrame, wl: Workload, cand: Candidates) -> str:
    """One line: the cheapest plan, or why none serves the rate (with the most any candidate sustains)."""
    ok = df[df["status"] != "rejected"]
    if len(ok):
        b = ok.iloc[0]
        how = "simulated" if b["status"] == "meets" else "mean-value model only"
        return (f"{int(b['gpus_total'])} x {b['gpu']} ({int(b['replicas'])} replica(s) of TP {int(b['tp'])}"
                f"{f' x PP {int(b.pp)}' if b['pp'] > 1 else ''}, {b['weights']} weights, {b['kv_dtype']} KV) at "
                f"${b['usd_per_hour']:,.2f}/h ({how})")
    rate = wl.request_rate_per_s
    if "sustainable_rate_per_s" in df and df["sustainable_rate_per_s"].notna().any():
        best = df.loc[df["sustainable_rate_per_s"].idxmax()]
        basis = {"bound": "at most, by the roofline bound", "mean-value": "about, in the mean-value model",
                 "simulation": "about, simulated"}.get(best["evaluated_by"], "about")
        return (f"no candidate sustains {rate:g} requests/s within {cand.max_gpus:,} GPUs and the targets; the most any "
                f"sustains is {best['sustainable_rate_per_s']:.3g} requests/s ({basis}: {best['gpu']} TP {int(best['tp'])}"
                f"{f' x PP {int(best.pp)}' if best['pp'] > 1 else ''}, {best['weights']} weights, {best['kv_dtype']} KV); "
                "per candidate in sustainable_rate_per_s")
    counts = df["failed"].fillna("other").value_counts()
    return "no candidate meets the targets (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")"
