"""Tiers 2 and 3 of the SLO search (planner/slo.py): plans built with their serving engine and ranked by
the mean-value model, the cheapest simulated, in cost order (branch and bound on the tier-1 bounds).

Rows are plain dicts, one per candidate, filled in as a candidate goes through the tiers; keys that
start with ``_`` (the plan, its mean-value figures) are dropped when the frame is built.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from . import api
from .errors import PlannerInputError
from .serving import evaluate
from .simulate import draw_lengths, simulate
from .spec import ModelSpec

if TYPE_CHECKING:
    from .slo import Candidates, Targets, Workload


def _mean_column(metric: str) -> str:
    return {"ttft": "ttft_s", "tpot": "tpot_s", "e2e": "e2e_latency_s"}[metric]


def reject(row: dict, failed: str, reason: str, **more) -> dict:
    row.update(status="rejected", failed=failed, reason=reason, **more)
    return row


def screen(spec: ModelSpec, row: dict, wl: Workload, tg: Targets, cand: Candidates) -> dict:
    """Tier 2: build the plan with its serving engine; the mean-value batch, replicas and latencies."""
    try:
        plan = api.build_plan(spec, row["gpu"], cand.deployment(row))
    except PlannerInputError as e:
        return reject(row, "input", str(e))
    p, o = wl.prompt_tokens, wl.mean_output_tokens
    mm = plan.memory
    row.update(evaluated_by="mean-value", gpus_per_replica=plan.gpus_per_replica, provenance=plan.provenance,
               server_version=mm.dep.server_version or row["server_version"])
    max_b = int(min(cand.max_batch, mm.max_batch(p, o // 2)))  # average occupancy under continuous batching
    if max_b < 1:
        one = mm.plan(1, p, o)
        return reject(row, "memory", f"memory: one request of {p}+{o} tokens needs "
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
        return reject(row, failed, "latency at batch 1 (mean): " + ", ".join(misses) + "; more replicas cannot "
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
        return reject(row, "size", f"needs {row['gpus_total']:,} GPUs, over the limit of {cand.max_gpus:,}: "
                      f"{cand.max_gpus:,} GPUs sustain about {most:.3g} requests/s (mean-value)",
                      sustainable_rate_per_s=most)
    return row


def _cost(row: dict, wl: Workload) -> None:
    row["gpus_total"] = row["replicas"] * row["gpus_per_replica"]
    row["usd_per_hour"] = row["gpus_total"] * row["price_usd_per_gpu_hour"]
    row["cost_usd_per_1m_output_tokens"] = row["usd_per_hour"] / (wl.request_rate_per_s * wl.mean_output_tokens * 3600) * 1e6
    row["cost_usd_per_1m_requests"] = row["usd_per_hour"] / (wl.request_rate_per_s * 3600) * 1e6
    row["capacity_headroom"] = 1 - wl.request_rate_per_s / (row["replicas"] * row["requests_per_s_per_replica"])


def _unbounded(row: dict) -> None:
    """A queue that grows without bound has no finite TTFT or end-to-end latency, in any column."""
    for k in [k for k in row if k.endswith("_s") and ("ttft" in k or "e2e" in k)]:
        row[k] = float("inf")
    row["latency_headroom"] = -float("inf")


def lengths(wl: Workload, cand: Candidates) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cand.seed)
    n = cand.sim_requests
    prompts = draw_lengths(wl.prompt_tokens, wl.distribution, n, rng)
    outputs = draw_lengths(wl.output_tokens, wl.distribution, n, rng)
    if wl.max_tokens is not None:
        outputs = np.minimum(outputs, wl.max_tokens)  # generation stops at the cap
    return prompts, outputs


def simulate_row(row: dict, wl: Workload, tg: Targets, cand: Candidates, drawn) -> bool:
    """Tier 3: one simulation of the row's plan at its replicas; True when it meets the targets."""
    plan = row["_plan"]
    replicas = row["replicas"]
    sched = replace(plan.scheduler, max_num_seqs=row["batch"]) if plan.scheduler is not None else None
    row["evaluated_by"] = "simulation"
    try:
        res = simulate(plan.timing, wl.request_rate_per_s / replicas, *drawn, row["kv_capacity_bytes"],
                       max_num_seqs=row["batch"], seed=cand.seed, profile=sched, max_tokens=wl.max_tokens)
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


class Search:
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
        self.lengths = lengths(wl, cand)

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
                if screen(self.spec, r, self.wl, self.tg, self.cand)["status"] == "screened":
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
        if simulate_row(r, self.wl, self.tg, self.cand, self.lengths):
            self.confirmed.append(r["usd_per_hour"])
            return
        more = r["replicas"] + 1
        if (not r.get("_final") and more - r["_mean_replicas"] <= self.cand.max_extra_replicas
                and more * r["gpus_per_replica"] <= self.cand.max_gpus):
            r["_next_replicas"] = more
            r["usd_per_hour"] = more * r["gpus_per_replica"] * r["price_usd_per_gpu_hour"]  # its cost if one more works
            self._push(r)
            return
        reject(r, r["failed"], f"simulated with up to {r['replicas']} replicas: {r['reason']}")

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
                reject(r, r["failed"], f"{r['reason']}; not simulated with {n}: "
                       f"{why(n * r['gpus_per_replica'] * r['price_usd_per_gpu_hour'])}")
            else:
                r.update(status="meets (mean-value)", reason="not simulated: meets the targets in the mean-value model")
        for r in self.alive[i:]:
            reject(r, "cost", f"not built: its roofline bound, {why(r['usd_per_hour_lower_bound'])}")
