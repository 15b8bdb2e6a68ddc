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

Ranking is by the deployment's $ per hour (= $ per 1M output tokens at the workload's rate),
then GPUs. Every candidate stays in the table: confirmed (``meets``), built but not simulated
(``meets (mean-value)``), or ``rejected`` with ``failed`` and ``reason``; a plan that cannot be
cheaper than those found is rejected with ``failed = cost``. A rate no candidate sustains within
``max_gpus`` is said so, with the most each sustains; an unstable queue never shows a finite TTFT.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from . import api, profiles, slo_bound, slo_space
from .errors import PlannerInputError, require_positive_int
from .memory import MAX_CONTEXT, SERVERS, Deployment
from .serving import evaluate
from .simulate import DISTRIBUTIONS, draw_lengths, simulate
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


def _mean_column(metric: str) -> str:
    return {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_latency_s"}[metric]


def _reject(row: dict, failed: str, reason: str, **more) -> dict:
    row.update(status="rejected", failed=failed, reason=reason, **more)
    return row


def _bound(spec: ModelSpec, row: dict, wl: Workload, tg: Targets, cand: Candidates, effs: dict) -> dict:
    """Tier 1: reject what cannot work even at its best; else the lower bound of its cost."""
    g = profiles.gpu(row["gpu"])
    if g.id not in effs:
        effs[g.id] = api.efficiency_for(g.id, cand.engine)
    b = slo_bound.bound(spec, g, cand.deployment(row), effs[g.id], wl.request_rate_per_s, wl.prompt_tokens,
                        wl.output_tokens, tg.items(), cand.max_batch)
    row["gpus_per_replica"] = b["gpus_per_replica"]
    if "failed" in b:
        return _reject(row, b["failed"], b["reason"])
    row.update(requests_per_s_upper_bound=b["requests_per_s_ub"], usd_per_hour_lower_bound=b["usd_per_hour_lb"])
    if b["replicas_lb"] * b["gpus_per_replica"] > cand.max_gpus:
        most = cand.max_gpus // b["gpus_per_replica"] * b["requests_per_s_ub"]
        return _reject(row, "size", f"needs at least {b['replicas_lb'] * b['gpus_per_replica']:,} GPUs (roofline "
                       f"bound), over the limit of {cand.max_gpus:,}: {cand.max_gpus:,} GPUs sustain at most "
                       f"{most:.3g} requests/s", sustainable_rate_per_s=most)
    return row


def _screen(spec: ModelSpec, row: dict, wl: Workload, tg: Targets, cand: Candidates) -> dict:
    """Tier 2: build the plan with its serving engine; the mean-value batch, replicas and latencies."""
    try:
        plan = api.build_plan(spec, row["gpu"], cand.deployment(row))
    except PlannerInputError as e:
        return _reject(row, "input", str(e))
    p, o = wl.prompt_tokens, wl.output_tokens
    mm = plan.memory
    row.update(evaluated_by="mean-value", gpus_per_replica=plan.gpus_per_replica, provenance=plan.provenance,
               server_version=mm.dep.server_version or row["server_version"])
    max_b = int(min(cand.max_batch, mm.max_batch(p, o // 2)))  # average occupancy under continuous batching
    if max_b < 1:
        one = mm.plan(1, p, o)
        return _reject(row, "memory", f"memory: one request of {p}+{o} tokens needs "
                       f"{float(one['total_bytes']) / 2**30:.1f} GiB per GPU, {float(one['capacity_bytes']) / 2**30:.1f} "
                       "GiB available (add TP, quantize weights or KV)")
    b = np.arange(1, max_b + 1)
    m = evaluate(plan, b, p, o)
    ok = np.ones(b.size, dtype=bool)
    for metric, target in tg.items():
        ok &= m[_mean_column(metric)] <= target
    if not ok[0]:
        misses = [f"{metric.upper()} {float(m[_mean_column(metric)][0]):.3g} s > {target:g} s"
                  for metric, target in tg.items() if m[_mean_column(metric)][0] > target]
        failed = next(mt for mt, tv in tg.items() if m[_mean_column(mt)][0] > tv)
        return _reject(row, failed, "latency at batch 1 (mean): " + ", ".join(misses) + "; more replicas cannot "
                       "help (a faster GPU, more TP or a smaller format can)")
    best = int(np.nonzero(ok)[0][-1])  # latencies grow with batch, so the last passing batch serves the most
    rps = float(m["requests_per_s"][best])
    replicas = max(1, math.ceil(wl.request_rate_per_s / rps))
    row.update(status="screened", batch=int(b[best]), max_batch_memory=max_b, replicas=replicas,
               requests_per_s_per_replica=rps, mean_ttft_s=float(m["ttft_s"][best]),
               mean_tpot_s=float(m["tpot_s"][best]), mean_e2e_s=float(m["e2e_latency_s"][best]),
               latency_headroom=float(min(1 - m[_mean_column(mt)][best] / v for mt, v in tg.items())),
               kv_capacity_bytes=mm.kv_budget_bytes(), _plan=plan, _mean_replicas=replicas)
    row["_mean"] = {k: row[k] for k in ("mean_ttft_s", "mean_tpot_s", "mean_e2e_s", "latency_headroom")}
    _cost(row, wl)
    if row["gpus_total"] > cand.max_gpus:
        most = cand.max_gpus // row["gpus_per_replica"] * rps
        _unbounded(row)
        return _reject(row, "size", f"needs {row['gpus_total']:,} GPUs, over the limit of {cand.max_gpus:,}: "
                       f"{cand.max_gpus:,} GPUs sustain about {most:.3g} requests/s (mean-value)",
                       sustainable_rate_per_s=most)
    return row


def _cost(row: dict, wl: Workload) -> None:
    row["gpus_total"] = row["replicas"] * row["gpus_per_replica"]
    row["usd_per_hour"] = row["gpus_total"] * row["price_usd_per_gpu_hour"]
    row["cost_usd_per_1m_output_tokens"] = row["usd_per_hour"] / (wl.request_rate_per_s * wl.output_tokens * 3600) * 1e6
    row["cost_usd_per_1m_requests"] = row["usd_per_hour"] / (wl.request_rate_per_s * 3600) * 1e6
    row["capacity_headroom"] = 1 - wl.request_rate_per_s / (row["replicas"] * row["requests_per_s_per_replica"])


def _unbounded(row: dict) -> None:
    """A queue that grows without bound has no finite TTFT or end-to-end latency, in any column."""
    for k in [k for k in row if k.endswith("_s") and ("ttft" in k or "e2e" in k)]:
        row[k] = float("inf")
    row["latency_headroom"] = -float("inf")


def _lengths(wl: Workload, cand: Candidates) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cand.seed)
    n = cand.sim_requests
    return draw_lengths(wl.prompt_tokens, wl.distribution, n, rng), draw_lengths(wl.output_tokens, wl.distribution, n, rng)


def _simulate(row: dict, wl: Workload, tg: Targets, cand: Candidates, lengths) -> bool:
    """Tier 3: one simulation of the row's plan at its replicas; True when it meets the targets."""
    plan = row["_plan"]
    replicas = row["replicas"]
    sched = replace(plan.scheduler, max_num_seqs=row["batch"]) if plan.scheduler is not None else None
    row["evaluated_by"] = "simulation"
    try:
        res = simulate(plan.timing, wl.request_rate_per_s / replicas, *lengths, row["kv_capacity_bytes"],
                       max_num_seqs=row["batch"], seed=cand.seed, profile=sched)
    except PlannerInputError as e:  # the engine's pool cannot hold one request's first chunk
        row.update(failed="memory", reason=str(e), sim_stable=False, _final=True)
        return False
    q = tg.percentile
    for metric in ("ttft", "tpot", "e2e"):
        row[f"sim_{metric}_p{q}_s"] = res.percentile(metric, q) if res.stable else float("inf")
    row.update(sim_mean_running=res.mean_running, sim_preemptions=res.preemptions, sim_stable=res.stable,
               sim_replicas=replicas)
    row["latency_headroom"] = min(1 - row[f"sim_{m}_p{q}_s"] / v for m, v in tg.items())
    if not res.stable:
        served = replicas * res.throughput_requests_per_s
        _unbounded(row)
        row.update(failed="unstable", sustainable_rate_per_s=served,
                   reason=f"queue grows without bound at {wl.request_rate_per_s:g} requests/s on {replicas} replica(s): "
                          f"they serve about {served:.3g} requests/s")
        return False
    misses = [f"p{q} {metric.upper()} {row[f'sim_{metric}_p{q}_s']:.3g} s > {target:g} s"
              for metric, target in tg.items() if row[f"sim_{metric}_p{q}_s"] > target]
    if misses:
        row.update(failed=misses[0].split()[1].lower(), reason=f"on {replicas} replica(s): " + "; ".join(misses))
        return False
    extra = replicas - row["_mean_replicas"]
    row.update(status="meets", reason="" if not extra else f"needed {extra} more replica(s) than the mean-value estimate")
    row.pop("failed", None)
    return True


class _Search:
    """Tiers 2 and 3 in cost order: build the plan with the lowest bound, simulate the cheapest built
    plan once nothing unbuilt can be cheaper, until ``simulate_top`` plans are confirmed and nothing
    left can undercut the dearest of them."""

    def __init__(self, spec: ModelSpec, alive: list[dict], wl: Workload, tg: Targets, cand: Candidates):
        self.spec, self.wl, self.tg, self.cand = spec, wl, tg, cand
        self.alive = sorted(alive, key=lambda r: (r["usd_per_hour_lower_bound"], r["gpus_per_replica"]))
        self.heap: list[tuple] = []
        self.confirmed: list[float] = []
        self.built = self.simulations = 0
        self.simulated: set[int] = set()
        self.max_simulations = 4 * cand.simulate_top * (1 + cand.max_extra_replicas)
        self._seq = itertools.count()
        self.lengths = _lengths(wl, cand)

    def bar(self) -> float:
        """The dearest confirmed plan's cost once enough are confirmed: nothing at or above it can enter."""
        return max(self.confirmed) if len(self.confirmed) >= self.cand.simulate_top else math.inf

    def _push(self, r: dict) -> None:
        heapq.heappush(self.heap, (r["usd_per_hour"], r["gpus_total"], -r["requests_per_s_per_replica"],
                                   next(self._seq), r))

    def run(self) -> None:
        i = 0
        while self.simulations < self.max_simulations:
            next_lb = self.alive[i]["usd_per_hour_lower_bound"] if i < len(self.alive) else math.inf
            if self.heap and self.heap[0][0] <= next_lb:
                if self.heap[0][0] >= self.bar():
                    break
                self._simulate(heapq.heappop(self.heap)[-1])
            elif i < len(self.alive) and next_lb < self.bar():
                r = self.alive[i]
                i += 1
                self.built += 1
                if _screen(self.spec, r, self.wl, self.tg, self.cand)["status"] == "screened":
                    self._push(r)
            else:
                break
        self._finish(i)

    def _simulate(self, r: dict) -> None:
        if "_next_replicas" in r:
            r["replicas"] = r.pop("_next_replicas")
            _cost(r, self.wl)
        r.update(r["_mean"])
        r.pop("sustainable_rate_per_s", None)
        self.simulations += 1
        self.simulated.add(id(r))
        if _simulate(r, self.wl, self.tg, self.cand, self.lengths):
            self.confirmed.append(r["usd_per_hour"])
            return
        more = r["replicas"] + 1
        if (not r.get("_final") and more - r["_mean_replicas"] <= self.cand.max_extra_replicas
                and more * r["gpus_per_replica"] <= self.cand.max_gpus):
            r["_next_replicas"] = more
            r["usd_per_hour"] = more * r["gpus_per_replica"] * r["price_usd_per_gpu_hour"]  # its cost if one more works
            self._push(r)
            return
        _reject(r, r["failed"], f"simulated with up to {r['replicas']} replicas: {r['reason']}")

    def _finish(self, i: int) -> None:
        """Label what the search did not take further, and why."""
        bar = self.bar()

        def why(cost: float) -> str:
            if cost >= bar:
                return f"${cost:,.2f}/h is no less than the ${bar:,.2f}/h of the {len(self.confirmed)} plan(s) confirmed"
            return f"${cost:,.2f}/h, but the search's {self.max_simulations} simulations were spent"

        for *_, r in self.heap:
            if id(r) in self.simulated:  # it missed at its replicas; one more would cost as much as a confirmed plan
                n = r.pop("_next_replicas")
                _cost(r, self.wl)
                _reject(r, r["failed"], f"{r['reason']}; not simulated with {n}: "
                        f"{why(n * r['gpus_per_replica'] * r['price_usd_per_gpu_hour'])}")
            else:
                r.update(status="meets (mean-value)", reason="not simulated: meets the targets in the mean-value model")
        for r in self.alive[i:]:
            _reject(r, "cost", f"not built: its roofline bound, {why(r['usd_per_hour_lower_bound'])}")


def _row(pt: slo_space.Point, cand: Candidates, version: str) -> dict:
    paged = cand.engine == "paged"
    row = {"gpu": pt.gpu, "tp": pt.tp, "pp": pt.pp, "weights": pt.weights, "kv_dtype": pt.kv_dtype,
           "engine": cand.engine, "server": cand.server if paged else "", "server_version": version if paged else "",
           "gpus_per_replica": pt.tp * pt.pp, "price_usd_per_gpu_hour": profiles.gpu(pt.gpu).price_usd_per_hour,
           "evaluated_by": "bound", "status": "screened", "note": pt.note}
    return _reject(row, "input", pt.error) if pt.error else row


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
    if not targets.items():
        raise PlannerInputError("targets", "no latency target given", "set at least one of TTFT, TPOT or end-to-end")
    spec = api.resolve_model(model)
    version = _server_version(candidates)
    pts, whole = slo_space.points(spec, candidates.gpus, candidates.tps, candidates.pps, candidates.weights,
                                  candidates.kv_dtypes)
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
    search = _Search(spec, alive, workload, targets, candidates)
    search.run()
    df = _frame(rows, workload, targets)
    df.attrs["search"] = {"candidates": len(rows), "rejected_by_bound": len(rows) - len(alive),
                          "built": search.built, "simulated": len(search.simulated), "simulations": search.simulations}
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
