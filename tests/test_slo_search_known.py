"""Tiers 2 and 3 of the SLO search (planner/slo_search.py) on stubbed plans, metrics and simulations, so
every number the search derives is checkable by hand and each test runs in milliseconds.

The seams are the module attributes the search calls: ``api.build_plan`` (a fake plan whose memory
says how many requests fit), ``slo_search.evaluate`` (mean-value metrics linear in the batch) and
``slo_search.simulate`` (a queue whose p-th TTFT grows with the rate per replica). The branch and
bound (``Search``) is tested on its own with ``screen`` and ``simulate_row`` replaced by scripted ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from planner import slo, slo_search
from planner.errors import PlannerInputError
from planner.simulate import draw_lengths

SPEC = "a model spec"  # passed through to build_plan untouched: the fakes never read it
GIB = 2**30


# ------------------------------------------------------------------ fakes


@dataclass(frozen=True)
class Sched:
    max_num_seqs: int = 256
    chunk: int = 512


class FakeMemory:
    def __init__(self, max_b: int, version: str | None = "9.9.9", kv: float = 7e9,
                 one=(21.47 * GIB, 10.04 * GIB)):
        self.max_b, self.kv, self.one = max_b, kv, one
        self.dep = SimpleNamespace(server_version=version)
        self.asked: list[tuple] = []

    def max_batch(self, prompt, context):
        self.asked.append((prompt, context))
        return self.max_b

    def plan(self, b, p, o):
        self.asked.append(("plan", b, p, o))
        return {"total_bytes": np.asarray(self.one[0]), "capacity_bytes": np.asarray(self.one[1])}

    def kv_budget_bytes(self):
        return self.kv


@dataclass
class FakePlan:
    memory: FakeMemory
    gpus_per_replica: int = 1
    provenance: str = "datasheet"
    scheduler: Sched | None = Sched()
    timing: str = "the timing model"


@pytest.fixture
def plans(monkeypatch):
    """api.build_plan -> FakePlan; ``plans.memory[gpu]`` sets a GPU's memory, ``plans.calls`` what was asked."""
    st = SimpleNamespace(memory={}, gpus={}, calls=[])

    def build_plan(spec, gpu, dep):
        st.calls.append((spec, gpu, dep))
        if gpu == "bad":
            raise PlannerInputError("tp", "32 attention heads do not split over 3 GPUs", "use 1, 2, 4 or 8")
        return FakePlan(st.memory.get(gpu, FakeMemory(20)), gpus_per_replica=st.gpus.get(gpu, dep.tp * dep.pp))

    monkeypatch.setattr(slo_search.api, "build_plan", build_plan)
    return st


@pytest.fixture
def linear(monkeypatch):
    """Mean metrics at batch b: TTFT b / 10 s, TPOT b / 100 s, e2e b s, b / 2 requests/s."""
    calls = []

    def evaluate(plan, b, p, o):
        calls.append((plan, np.asarray(b).tolist(), p, o))
        b = np.asarray(b, dtype=float)
        return {"ttft_s": b / 10, "tpot_s": b / 100, "e2e_latency_s": 1.0 * b, "requests_per_s": b / 2}

    monkeypatch.setattr(slo_search, "evaluate", evaluate)
    return calls


def cands(**kw) -> slo.Candidates:
    return slo.Candidates(**{"gpus": ("H100-SXM",), "max_batch": 8, "sim_requests": 50, **kw})


def fresh(gpu="H100-SXM", tp=1, pp=1, price=3.0, **kw) -> dict:
    """A row as tier 1 leaves it (slo._row + slo._bound)."""
    return {"gpu": gpu, "tp": tp, "pp": pp, "weights": "bf16", "kv_dtype": "bf16", "engine": "paged",
            "server": "vllm", "server_version": "0.33.0", "gpus_per_replica": tp * pp, "price_usd_per_gpu_hour": price,
            "evaluated_by": "bound", "status": "screened", **kw}


def screen(wl, tg, cand=None, row=None):
    return slo_search.screen(SPEC, row or fresh(), wl, tg, cand or cands())


# ------------------------------------------------------------------ tier 2: screen


def test_replicas_are_the_rate_over_the_best_batchs_throughput_rounded_up(plans, linear):
    # TTFT b / 10 <= 0.55 s holds up to batch 5 (0.6 > 0.55 at 6), which serves 5 / 2 = 2.5 requests/s;
    # 12 requests/s need ceil(12 / 2.5) = ceil(4.8) = 5 replicas of 1 GPU at $3/h: 5 GPUs, $15/h
    row = screen(slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.55))
    assert row["status"] == "screened" and row["evaluated_by"] == "mean-value"
    assert (row["batch"], row["max_batch_memory"], row["replicas"], row["_mean_replicas"]) == (5, 8, 5, 5)
    assert row["requests_per_s_per_replica"] == 2.5
    assert (row["mean_ttft_s"], row["mean_tpot_s"], row["mean_e2e_s"]) == pytest.approx((0.5, 0.05, 5.0), rel=1e-12)
    assert row["latency_headroom"] == pytest.approx(1 - 0.5 / 0.55, rel=1e-12)
    assert row["_mean"] == {"mean_ttft_s": row["mean_ttft_s"], "mean_tpot_s": row["mean_tpot_s"],
                            "mean_e2e_s": row["mean_e2e_s"], "latency_headroom": row["latency_headroom"]}
    assert (row["gpus_total"], row["usd_per_hour"]) == (5, 15.0)
    assert row["kv_capacity_bytes"] == 7e9 and isinstance(row["_plan"], FakePlan)
    assert linear[0][0] is row["_plan"]  # the metrics are the built plan's
    assert (row["provenance"], row["server_version"]) == ("datasheet", "9.9.9")  # the version the plan resolved
    # the cost of the mean-value plan: $15/h over 12 x 100 x 3600 output tokens an hour
    assert row["cost_usd_per_1m_output_tokens"] == pytest.approx(15 / (12 * 100 * 3600) * 1e6, rel=1e-12)
    assert row["capacity_headroom"] == pytest.approx(1 - 12 / 12.5, rel=1e-12)
    # the plan was built as the row says, with the candidates' engine and batch limit
    (spec, gpu, dep), = plans.calls
    assert (spec, gpu, dep.tp, dep.pp, dep.weights, dep.kv_dtype, dep.max_num_seqs) == (SPEC, "H100-SXM", 1, 1, "bf16",
                                                                                      "bf16", 8)
    # 11 requests/s: 4.4 replicas' worth -> 5; exactly 10 -> 4, not 5; 0.1 -> 1
    for rate, n in ((11, 5), (10, 4), (0.1, 1)):
        assert screen(slo.Workload(rate, 1000, 100), slo.Targets(ttft_s=0.55))["replicas"] == n, rate


def test_the_batches_evaluated_are_those_memory_holds_at_average_occupancy(plans, linear):
    # memory is asked for the prompt plus half the output (101 // 2 = 50 tokens: whole tokens), and every
    # batch from 1 up to the smaller of what fits (6) and max_batch (8) is evaluated
    plans.memory["H100-SXM"] = mem = FakeMemory(6)
    row = screen(slo.Workload(12, 1000, 101), slo.Targets(ttft_s=100.0))
    assert mem.asked == [(1000, 50)]
    assert linear[-1][1:] == ([1, 2, 3, 4, 5, 6], 1000, 101)
    assert (row["batch"], row["max_batch_memory"]) == (6, 6)  # every batch meets 100 s: the largest
    # max_batch caps it: 3 of the 6 that fit
    row = screen(slo.Workload(12, 1000, 101), slo.Targets(ttft_s=100.0), cands(max_batch=3))
    assert (row["batch"], row["max_batch_memory"]) == (3, 3) and linear[-1][1] == [1, 2, 3]
    # the output the cap leaves: fixed 100 tokens stopped at 40 -> memory at 1000 + 20, metrics at 40
    row = screen(slo.Workload(12, 1000, 100, max_tokens=40), slo.Targets(ttft_s=100.0))
    assert mem.asked[-1] == (1000, 20) and linear[-1][2:] == (1000, 40)


def test_every_target_binds_and_the_headroom_is_the_tightest(plans, linear):
    wl = slo.Workload(12, 1000, 100)
    # TTFT b / 10 <= 0.55 (b <= 5) and TPOT b / 100 <= 0.035 (b <= 3): batch 3 at 1.5 requests/s, ceil(12 / 1.5) = 8
    two = screen(wl, slo.Targets(ttft_s=0.55, tpot_s=0.035))
    assert (two["batch"], two["replicas"]) == (3, 8)
    # headroom min(1 - 0.3 / 0.55, 1 - 0.03 / 0.035) = min(0.4545, 0.1429)
    assert two["latency_headroom"] == pytest.approx(1 - 0.03 / 0.035, rel=1e-12)
    # the end-to-end target reads the e2e column: b <= 2.5 -> batch 2
    assert screen(wl, slo.Targets(e2e_s=2.5))["batch"] == 2
    # a target met exactly: TTFT 0.5 s at batch 5 against 0.5 s passes
    assert screen(wl, slo.Targets(ttft_s=0.5))["batch"] == 5
    # only batch 1 meets TTFT <= 0.15 s: 0.5 requests/s a replica, 24 replicas
    one = screen(wl, slo.Targets(ttft_s=0.15))
    assert (one["status"], one["batch"], one["replicas"]) == ("screened", 1, 24)


def test_only_batch_1_decides_a_latency_rejection(plans, linear):
    wl = slo.Workload(1, 1000, 100)
    # TTFT 0.1 s meets 0.15 at batch 1 (0.2 misses at 2); TPOT 0.01 misses 0.005: TPOT is the reason, named alone
    row = screen(wl, slo.Targets(ttft_s=0.15, tpot_s=0.005))
    assert row["failed"] == "tpot" and row["reason"].startswith("latency at batch 1 (mean): TPOT 0.01 s > 0.005 s; more")
    # TTFT 0.1 s misses 0.05; TPOT 0.01 s meets 0.015 at batch 1 (0.02 misses at 2): only TTFT is named
    row = screen(wl, slo.Targets(ttft_s=0.05, tpot_s=0.015))
    assert row["reason"] == ("latency at batch 1 (mean): TTFT 0.1 s > 0.05 s; more replicas cannot help (a faster GPU, "
                             "more TP or a smaller format can)")
    # met exactly (TTFT 1 / 10 = 0.1 s against 0.1 s) is met
    row = screen(wl, slo.Targets(ttft_s=0.1, tpot_s=0.005))
    assert row["failed"] == "tpot" and "TTFT" not in row["reason"]
    # memory for one request only: batch 1, screened
    plans.memory["H100-SXM"] = FakeMemory(1)
    row = screen(wl, slo.Targets(ttft_s=1.0))
    assert (row["status"], row["batch"], row["max_batch_memory"]) == ("screened", 1, 1)


def test_a_batch_of_one_that_misses_is_rejected_naming_the_first_target_missed(plans, linear):
    wl = slo.Workload(1, 1000, 100)
    # batch 1: TTFT 0.1 s, TPOT 0.01 s, e2e 1 s
    row = screen(wl, slo.Targets(ttft_s=0.05, tpot_s=0.005, e2e_s=2.0))
    assert (row["status"], row["failed"]) == ("rejected", "ttft")
    assert row["reason"] == ("latency at batch 1 (mean): TTFT 0.1 s > 0.05 s, TPOT 0.01 s > 0.005 s; more replicas "
                             "cannot help (a faster GPU, more TP or a smaller format can)")
    assert "replicas" not in row
    only_tpot = screen(wl, slo.Targets(ttft_s=1.0, tpot_s=0.005, e2e_s=0.5))
    assert only_tpot["failed"] == "tpot"
    assert only_tpot["reason"].startswith("latency at batch 1 (mean): TPOT 0.01 s > 0.005 s, E2E 1 s > 0.5 s; ")
    assert screen(wl, slo.Targets(ttft_s=1.0, e2e_s=0.5))["failed"] == "e2e"


def test_a_plan_that_cannot_hold_one_request_is_rejected_for_memory(plans, linear):
    plans.memory["H100-SXM"] = FakeMemory(0, one=(21.47 * GIB, 10.04 * GIB))
    row = screen(slo.Workload(1, 1000, 100), slo.Targets(ttft_s=1.0))
    assert (row["status"], row["failed"]) == ("rejected", "memory")
    assert row["reason"] == ("memory: one request of 1000+100 tokens needs 21.5 GiB per GPU, 10.0 GiB available "
                             "(add TP, quantize weights or KV)")
    assert plans.memory["H100-SXM"].asked[-1] == ("plan", 1, 1000, 100)
    assert linear == []  # nothing to evaluate


def test_a_plan_the_engine_refuses_is_rejected_with_its_message(plans, linear):
    row = screen(slo.Workload(1, 1000, 100), slo.Targets(ttft_s=1.0), row=fresh(gpu="bad", tp=3))
    assert (row["status"], row["failed"]) == ("rejected", "input")
    assert "do not split over 3" in row["reason"] and row["evaluated_by"] == "bound"


def test_a_deployment_over_max_gpus_is_rejected_with_the_rate_the_limit_sustains(plans, linear):
    # 5 replicas (12 requests/s at 2.5 each) of TP 2 = 10 GPUs; 9 allowed hold 9 // 2 = 4 replicas,
    # 4 x 2.5 = 10 requests/s. An unbounded queue shows no finite TTFT or e2e (TPOT stays the decode step's)
    wl, tg = slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.55)
    row = screen(wl, tg, cands(max_gpus=9), row=fresh(tp=2))
    assert (row["status"], row["failed"]) == ("rejected", "size")
    assert row["sustainable_rate_per_s"] == 10.0
    assert row["reason"] == ("needs 10 GPUs, over the limit of 9: 9 GPUs sustain about 10 requests/s "
                             "(mean-value)")
    assert row["mean_ttft_s"] == math.inf and row["mean_e2e_s"] == math.inf and row["latency_headroom"] == -math.inf
    assert row["mean_tpot_s"] == pytest.approx(0.05) and row["requests_per_s_per_replica"] == 2.5
    # exactly at the limit is allowed
    assert screen(wl, tg, cands(max_gpus=10), row=fresh(tp=2))["status"] == "screened"
    # the plan's own GPU count counts (a plan may say otherwise than tp x pp): 5 replicas x 3 = 15 > 10
    plans.gpus["H100-SXM"] = 3
    row = screen(wl, tg, cands(max_gpus=10), row=fresh(tp=2))
    assert (row["gpus_per_replica"], row["gpus_total"], row["failed"]) == (3, 15, "size")
    assert row["sustainable_rate_per_s"] == 10 // 3 * 2.5


def test_the_row_keeps_its_version_when_the_plan_names_none(plans, linear):
    plans.memory["H100-SXM"] = FakeMemory(8, version=None)
    assert screen(slo.Workload(1, 1000, 100), slo.Targets(ttft_s=1.0))["server_version"] == "0.33.0"


def test_cost_of_a_deployment():
    # 5 replicas of TP 2 at $2.50 per GPU-hour: 10 GPUs, $25/h; at 12 requests/s of 200 output tokens:
    # $25 / (12 x 200 x 3600 tokens) x 1e6 = $2.8935 per 1M output tokens; $25 / (12 x 3600) x 1e6 = $578.70
    # per 1M requests; capacity 5 x 2.5 = 12.5 requests/s for 12: headroom 1 - 12 / 12.5 = 0.04
    row = {"replicas": 5, "gpus_per_replica": 2, "price_usd_per_gpu_hour": 2.5, "requests_per_s_per_replica": 2.5}
    slo_search._cost(row, slo.Workload(12, 1000, 200))
    assert row["gpus_total"] == 10 and row["usd_per_hour"] == 25.0
    assert row["cost_usd_per_1m_output_tokens"] == pytest.approx(2.893518518518, rel=1e-9)
    assert row["cost_usd_per_1m_requests"] == pytest.approx(578.7037037037, rel=1e-9)
    assert row["capacity_headroom"] == pytest.approx(0.04, rel=1e-9)
    # the mean output the max_tokens cap leaves is what a token costs: fixed 200 stopped at 100
    slo_search._cost(row, slo.Workload(12, 1000, 200, max_tokens=100))
    assert row["cost_usd_per_1m_output_tokens"] == pytest.approx(2 * 2.893518518518, rel=1e-9)


def test_an_unbounded_queue_has_no_finite_ttft_or_e2e_in_any_column():
    row = {"mean_ttft_s": 0.1, "sim_ttft_p90_s": 0.2, "mean_e2e_s": 3.0, "sim_e2e_p90_s": 4.0, "mean_tpot_s": 0.01,
           "sim_tpot_p90_s": 0.02, "ttft_note": "x", "usd_per_hour": 5.0, "latency_headroom": 0.3}
    slo_search._unbounded(row)
    assert row == {"mean_ttft_s": math.inf, "sim_ttft_p90_s": math.inf, "mean_e2e_s": math.inf,
                   "sim_e2e_p90_s": math.inf, "mean_tpot_s": 0.01, "sim_tpot_p90_s": 0.02, "ttft_note": "x",
                   "usd_per_hour": 5.0, "latency_headroom": -math.inf}


def test_simulated_lengths_are_drawn_with_the_seed_and_capped():
    wl = slo.Workload(1, 100, 40)
    p, o = slo_search.lengths(wl, cands(sim_requests=7))
    assert p.tolist() == [100] * 7 and o.tolist() == [40] * 7  # fixed lengths
    p, o = slo_search.lengths(slo.Workload(1, 100, 40, max_tokens=25), cands(sim_requests=3))
    assert o.tolist() == [25] * 3  # generation stops at the cap
    # drawn: prompts first, then outputs, from one generator seeded with the candidates' seed
    rng = np.random.default_rng(11)
    want_p, want_o = draw_lengths(100, "uniform", 20, rng), draw_lengths(40, "uniform", 20, rng)
    p, o = slo_search.lengths(slo.Workload(1, 100, 40, "uniform", max_tokens=30), cands(sim_requests=20, seed=11))
    assert p.tolist() == want_p.tolist() and o.tolist() == np.minimum(want_o, 30).tolist()
    assert o.max() == 30 and want_o.max() > 30  # the cap did bind


# ------------------------------------------------------------------ tier 3: simulate_row


@dataclass
class FakeSim:
    ttft: float
    tpot: float = 0.01
    e2e: float = 1.6
    stable: bool = True
    mean_running: float = 3.0
    preemptions: int = 2
    throughput_requests_per_s: float = 0.0
    asked: list = None

    def percentile(self, metric, q):
        self.asked.append((metric, q))
        return {"ttft": self.ttft, "tpot": self.tpot, "e2e": self.e2e}[metric]


@pytest.fixture
def queue(monkeypatch):
    """simulate -> p-th TTFT = ``coef`` s x the rate per replica; ``q.sim`` overrides fields of the result."""
    q = SimpleNamespace(coef=0.2, sim={}, calls=[], asked=[], error=None)

    def simulate(timing, rate, prompts, outputs, kv, max_num_seqs, seed, profile, max_tokens):
        q.calls.append(dict(timing=timing, rate=rate, prompts=prompts, outputs=outputs, kv=kv, seqs=max_num_seqs,
                            seed=seed, profile=profile, max_tokens=max_tokens))
        if q.error:
            raise q.error
        return FakeSim(**{"ttft": q.coef * rate, "asked": q.asked, **q.sim})

    monkeypatch.setattr(slo_search, "simulate", simulate)
    return q


def built(replicas=3, mean_replicas=3, sched=Sched(), **kw) -> dict:
    return {**fresh(), "status": "screened", "replicas": replicas, "_mean_replicas": mean_replicas, "batch": 5,
            "kv_capacity_bytes": 7e9, "_plan": FakePlan(FakeMemory(8), scheduler=sched), "failed": "old", **kw}


WL12 = slo.Workload(12, 1000, 100, max_tokens=80)
TG = slo.Targets(ttft_s=1.0, tpot_s=0.02)


def test_a_simulation_at_the_rate_per_replica_that_meets_the_targets(queue):
    # 12 requests/s on 3 replicas: 4 each; p90 TTFT 0.2 x 4 = 0.8 s <= 1 s, TPOT 0.01 <= 0.02
    row, drawn = built(), (np.array([1, 2]), np.array([3, 4]))
    del row["failed"]  # a first simulation: nothing to clear
    assert slo_search.simulate_row(row, WL12, TG, cands(seed=7), drawn) is True
    (c,) = queue.calls
    assert (c["rate"], c["kv"], c["seqs"], c["seed"], c["max_tokens"], c["timing"]) == (4.0, 7e9, 5, 7, 80,
                                                                                     "the timing model")
    assert c["prompts"] is drawn[0] and c["outputs"] is drawn[1]
    assert c["profile"] == Sched(max_num_seqs=5, chunk=512)  # the engine's scheduler at the row's batch
    assert (row["sim_ttft_p90_s"], row["sim_tpot_p90_s"], row["sim_e2e_p90_s"]) == pytest.approx((0.8, 0.01, 1.6))
    assert sorted(queue.asked) == [("e2e", 90), ("tpot", 90), ("ttft", 90)]
    assert (row["sim_mean_running"], row["sim_preemptions"], row["sim_stable"], row["sim_replicas"]) == (3.0, 2, True, 3)
    assert row["latency_headroom"] == pytest.approx(min(1 - 0.8 / 1.0, 1 - 0.01 / 0.02))  # 0.2
    assert (row["status"], row["reason"], row["evaluated_by"]) == ("meets", "", "simulation")
    assert "failed" not in row
    row = built()
    assert slo_search.simulate_row(row, WL12, TG, cands(), drawn) and "failed" not in row  # an earlier miss is cleared
    # the headroom is the tightest target's, each relative to its target: TTFT 0.8 s of 2 s, TPOT 0.01 of 0.0125
    slo_search.simulate_row(row, WL12, slo.Targets(ttft_s=2.0, tpot_s=0.0125), cands(), drawn)
    assert row["latency_headroom"] == pytest.approx(min(1 - 0.8 / 2.0, 1 - 0.01 / 0.0125))  # 0.2


def test_the_percentile_asked_and_the_replicas_added(queue):
    row = built(replicas=3, mean_replicas=2)
    assert slo_search.simulate_row(row, WL12, slo.Targets(ttft_s=1.0, percentile=99), cands(), (1, 2))
    assert {q for _, q in queue.asked} == {99} and row["sim_ttft_p99_s"] == pytest.approx(0.8)
    assert row["reason"] == "needed 1 more replica(s) than the mean-value estimate"
    # no scheduler profile (an engine without one): none is passed
    assert slo_search.simulate_row(built(sched=None), WL12, TG, cands(), (1, 2))
    assert queue.calls[-1]["profile"] is None


def test_a_simulated_miss_names_the_first_target_missed(queue):
    queue.coef = 0.3  # 0.3 x 4 = 1.2 s > 1 s
    row = built()
    assert slo_search.simulate_row(row, WL12, TG, cands(), (1, 2)) is False
    assert (row["status"], row["failed"]) == ("screened", "ttft")
    assert row["reason"] == "on 3 replica(s): p90 TTFT 1.2 s > 1 s"
    assert row["latency_headroom"] == pytest.approx(1 - 1.2 / 1.0)
    queue.sim = {"tpot": 0.03}
    row = built()
    slo_search.simulate_row(row, WL12, TG, cands(), (1, 2))
    assert row["failed"] == "ttft" and row["reason"] == "on 3 replica(s): p90 TTFT 1.2 s > 1 s; p90 TPOT 0.03 s > 0.02 s"
    queue.coef = 0.25  # 0.25 x 4 = 1.0 s: exactly the target, met; TPOT still misses
    row = built()
    slo_search.simulate_row(row, WL12, TG, cands(), (1, 2))
    assert row["failed"] == "tpot" and row["reason"] == "on 3 replica(s): p90 TPOT 0.03 s > 0.02 s"


def test_an_unstable_queue_says_what_it_serves_and_shows_no_finite_latency(queue):
    # the replicas finish 1.5 requests/s each: 3 x 1.5 = 4.5 of the 12 offered
    queue.sim = {"stable": False, "throughput_requests_per_s": 1.5}
    row = built(mean_ttft_s=0.4, mean_e2e_s=2.0, mean_tpot_s=0.01)
    assert slo_search.simulate_row(row, WL12, TG, cands(), (1, 2)) is False
    assert (row["failed"], row["sim_stable"], row["sustainable_rate_per_s"]) == ("unstable", False, 4.5)
    assert row["reason"] == "queue grows without bound at 12 requests/s on 3 replica(s): they serve about 4.5 requests/s"
    for k in ("sim_ttft_p90_s", "sim_e2e_p90_s", "sim_tpot_p90_s", "mean_ttft_s", "mean_e2e_s"):
        assert row[k] == math.inf, k
    assert row["latency_headroom"] == -math.inf and row["mean_tpot_s"] == 0.01
    assert row["status"] == "screened"


def test_a_pool_that_cannot_hold_one_request_ends_the_rows_simulations(queue):
    queue.error = PlannerInputError("kv_capacity", "the pool holds 100 tokens, a first chunk needs 512")
    row = built()
    assert slo_search.simulate_row(row, WL12, TG, cands(), (1, 2)) is False
    assert (row["failed"], row["sim_stable"], row["_final"]) == ("memory", False, True)
    assert "a first chunk needs 512" in row["reason"] and "sim_ttft_p90_s" not in row
    assert row["evaluated_by"] == "simulation"


# ------------------------------------------------------------------ the branch and bound


class Script:
    """``screen`` and ``simulate_row`` for Search: ``plans[gpu] = (replicas, requests/s per replica)`` (None:
    the screen rejects it), ``need[gpu]`` = replicas the simulation needs (None: never enough);
    ``log`` the order of builds and simulations."""

    def __init__(self, monkeypatch, plans, need, final=()):
        self.plans, self.need, self.final, self.log, self.seen = plans, need, set(final), [], []
        monkeypatch.setattr(slo_search, "screen", self.screen)
        monkeypatch.setattr(slo_search, "simulate_row", self.simulate_row)

    def screen(self, spec, row, wl, tg, cand):
        self.log.append(("build", row["gpu"]))
        if self.plans[row["gpu"]] is None:
            return slo_search.reject(row, "ttft", "misses at batch 1")
        r0, rps = self.plans[row["gpu"]]
        row.update(status="screened", replicas=r0, requests_per_s_per_replica=rps, _mean_replicas=r0,
                   latency_headroom=0.5, _mean={"latency_headroom": 0.5})
        slo_search._cost(row, wl)
        return row

    def simulate_row(self, row, wl, tg, cand, drawn):
        self.log.append(("sim", row["gpu"], row["replicas"]))
        self.seen.append((row["usd_per_hour"], row["gpus_total"], row["latency_headroom"],
                          "sustainable_rate_per_s" in row, drawn))
        need = self.need.get(row["gpu"])
        if need is not None and row["replicas"] >= need:
            row.update(status="meets", reason="")
            row.pop("failed", None)
            return True
        row.update(failed="ttft", reason=f"miss at {row['replicas']}", latency_headroom=-1.0,
                   sustainable_rate_per_s=1.0)
        if row["gpu"] in self.final:
            row["_final"] = True
        return False


def alive(*specs) -> list[dict]:
    """(gpu, lower bound $/h, GPUs per replica, $ per GPU-hour) each."""
    return [{"gpu": g, "usd_per_hour_lower_bound": lb, "gpus_per_replica": n, "price_usd_per_gpu_hour": p,
             "status": "screened"} for g, lb, n, p in specs]


def search(rows, **kw) -> slo_search.Search:
    s = slo_search.Search(SPEC, rows, slo.Workload(10, 100, 10), TG, cands(**kw))
    s.run()
    return s


def by_gpu(rows) -> dict:
    return {r["gpu"]: r for r in rows}


def test_one_more_replica_costs_more_and_a_cheaper_plan_is_confirmed_first(monkeypatch):
    # A: bound $2, built at 1 x $3 = $3, needs 2 replicas ($6). B: bound $4, $5, meets as built.
    # C: bound $5.50, never built once B's $5 is confirmed.
    # build A ($3 <= next bound $4: simulate A, miss, back at $6) -> build B ($5) -> simulate B (5 <= 5.5): meets
    # -> $6 > next bound $5.50 and $5.50 >= the $5 confirmed: stop
    sc = Script(monkeypatch, {"A": (1, 1.0), "B": (1, 1.0), "C": (1, 1.0)}, {"A": 2, "B": 1, "C": 1})
    rows = alive(("C", 5.5, 1, 6.0), ("A", 2.0, 2, 1.5), ("B", 4.0, 1, 5.0))  # A: 2 GPUs at $1.50
    s = search(rows)
    assert sc.log == [("build", "A"), ("sim", "A", 1), ("build", "B"), ("sim", "B", 1)]
    assert (s.built, s.simulations, s.confirmed, len(s.simulated)) == (2, 2, [5.0], 2)
    r = by_gpu(rows)
    assert r["B"]["status"] == "meets"
    a = r["A"]
    assert (a["status"], a["failed"], a["replicas"], a["gpus_total"], a["usd_per_hour"]) == ("rejected", "ttft", 1, 2, 3.0)
    assert a["reason"] == ("miss at 1; not simulated with 2: $6.00/h is no less than the $5.00/h of the 1 plan(s) "
                           "confirmed")
    assert "_next_replicas" not in a
    assert (r["C"]["status"], r["C"]["failed"]) == ("rejected", "cost")
    assert r["C"]["reason"] == "not built: its roofline bound, $5.50/h is no less than the $5.00/h of the 1 plan(s) confirmed"


def test_a_plan_confirmed_with_one_more_replica_is_costed_at_it(monkeypatch):
    # A: $3 at 1 replica misses; at 2 ($6) it meets, and B ($7, built meanwhile) is left at the mean-value model
    sc = Script(monkeypatch, {"A": (1, 1.0), "B": (1, 1.0)}, {"A": 2, "B": 1})
    rows = alive(("A", 2.0, 1, 3.0), ("B", 4.0, 1, 7.0))
    s = search(rows)
    assert sc.log == [("build", "A"), ("sim", "A", 1), ("build", "B"), ("sim", "A", 2)]
    assert s.confirmed == [6.0]
    a, b = by_gpu(rows)["A"], by_gpu(rows)["B"]
    assert (a["status"], a["replicas"], a["gpus_total"], a["usd_per_hour"]) == ("meets", 2, 2, 6.0)
    assert a["capacity_headroom"] == pytest.approx(1 - 10 / 2)  # recosted at 2 replicas of 1 request/s
    # the second simulation starts from the mean-value figures, with no rate the last one claimed
    assert sc.seen[1][:4] == (6.0, 2, 0.5, False)
    assert (b["status"], b["reason"]) == ("meets (mean-value)", "not simulated: meets the targets in the mean-value model")
    assert sc.seen[0][4] is s.lengths  # every simulation gets the one set of drawn lengths


def test_replicas_added_stop_at_max_extra_replicas_max_gpus_or_a_final_miss(monkeypatch):
    # max_extra_replicas 0: a miss is final at once
    sc = Script(monkeypatch, {"A": (1, 1.0)}, {"A": None})
    rows = alive(("A", 2.0, 1, 3.0))
    search(rows, max_extra_replicas=0)
    assert sc.log == [("build", "A"), ("sim", "A", 1)]
    assert (rows[0]["status"], rows[0]["failed"], rows[0]["reason"]) == ("rejected", "ttft",
                                                                          "simulated with up to 1 replicas: miss at 1")
    # 2 extra allowed: 1, 2, 3 replicas tried, then rejected at 3
    sc = Script(monkeypatch, {"A": (1, 1.0)}, {"A": None})
    rows = alive(("A", 2.0, 1, 3.0))
    search(rows, max_extra_replicas=2)
    assert [e[2] for e in sc.log[1:]] == [1, 2, 3] and rows[0]["reason"] == "simulated with up to 3 replicas: miss at 3"
    # max_gpus 5 with 2 GPUs a replica: 2 replicas (4 GPUs) tried, 3 (6 GPUs) not
    sc = Script(monkeypatch, {"A": (1, 1.0)}, {"A": None})
    rows = alive(("A", 2.0, 2, 3.0))
    search(rows, max_gpus=5)
    assert [e[2] for e in sc.log[1:]] == [1, 2]
    sc = Script(monkeypatch, {"A": (1, 1.0)}, {"A": None})
    search(alive(("A", 2.0, 2, 3.0)), max_gpus=6)  # 6 GPUs is within the limit
    assert [e[2] for e in sc.log[1:]] == [1, 2, 3]
    # a miss the simulation marks final (the pool cannot hold a request) is not retried
    sc = Script(monkeypatch, {"A": (1, 1.0)}, {"A": None}, final={"A"})
    rows = alive(("A", 2.0, 1, 3.0))
    search(rows)
    assert sc.log == [("build", "A"), ("sim", "A", 1)] and rows[0]["status"] == "rejected"


def test_the_simulation_budget_ends_the_search_and_says_so(monkeypatch):
    # simulate_top 1, no extra replicas: 4 x 1 x (1 + 0) = 4 simulations; five plans that all miss
    plans = {g: (1, 1.0) for g in "ABCDE"}
    sc = Script(monkeypatch, plans, {})
    rows = alive(*((g, 1.0 + i, 1, 1.5 + i) for i, g in enumerate("ABCDE")))
    s = search(rows, max_extra_replicas=0)
    assert s.max_simulations == 4 and s.simulations == 4 and s.built == 4
    assert [e[0] for e in sc.log] == ["build", "sim"] * 4
    e = by_gpu(rows)["E"]
    assert (e["failed"], e["reason"]) == ("cost", "not built: its roofline bound, $5.00/h, but the search's 4 "
                                                  "simulations were spent")
    assert slo_search.Search(SPEC, [], slo.Workload(1, 10, 10), TG,
                             cands(simulate_top=3, max_extra_replicas=2)).max_simulations == 4 * 3 * 3
    # plans waiting for one more replica when the budget runs out say so. One extra replica allowed:
    # 4 x 1 x 2 = 8 simulations; A..E cost $1..$5 at 1 replica (bound = cost), each misses at 1 and 2 replicas.
    # sim A@1, A@2 (rejected), build B, sim B@1, build C, sim C@1, sim B@2 ($4 <= D's bound $4; rejected),
    # build D, sim D@1, build E, sim E@1, sim C@2 ($6; rejected): 8 spent with D@2 ($8) and E@2 ($10) waiting
    sc = Script(monkeypatch, plans, {})
    rows = alive(*((g, 1.0 + i, 1, 1.0 + i) for i, g in enumerate("ABCDE")))
    s = search(rows, max_extra_replicas=1)
    assert s.simulations == 8 and [x[1:] for x in sc.log if x[0] == "sim"] == [
        ("A", 1), ("A", 2), ("B", 1), ("C", 1), ("B", 2), ("D", 1), ("E", 1), ("C", 2)]
    r = by_gpu(rows)
    assert r["C"]["reason"] == "simulated with up to 2 replicas: miss at 2"
    d = r["D"]
    assert (d["status"], d["failed"], d["replicas"], d["usd_per_hour"]) == ("rejected", "ttft", 1, 4.0)
    assert d["reason"] == "miss at 1; not simulated with 2: $8.00/h, but the search's 8 simulations were spent"
    assert r["E"]["reason"] == "miss at 1; not simulated with 2: $10.00/h, but the search's 8 simulations were spent"


def test_plans_are_built_in_bound_order_and_simulated_in_cost_order(monkeypatch):
    # equal bounds: fewer GPUs per replica first; equal costs: fewer GPUs, then more requests/s per replica,
    # then the order they were built in
    sc = Script(monkeypatch, {"big": (1, 1.0), "small": (2, 1.0), "fast": (2, 3.0), "late": (2, 3.0)},
                {"big": 1, "small": 1, "fast": 1, "late": 1})
    rows = alive(("big", 1.0, 4, 1.0), ("small", 1.0, 1, 2.0), ("fast", 1.5, 1, 2.0), ("late", 1.5, 1, 2.0))
    search(rows, simulate_top=4)
    # all four cost $4/h (1 x 4 x $1, 2 x 1 x $2): big has 4 GPUs, the others 2; fast and late serve 3 requests/s
    assert [e[1] for e in sc.log if e[0] == "build"] == ["small", "big", "fast", "late"]
    assert [e[1] for e in sc.log if e[0] == "sim"] == ["fast", "late", "small", "big"]


def test_ties_between_a_built_cost_and_the_next_bound_and_the_bar(monkeypatch):
    # A built at $3, B's bound $3: A is simulated before B is built (a built plan at the next bound goes first)
    sc = Script(monkeypatch, {"A": (1, 1.0), "B": (1, 1.0)}, {"A": 1, "B": 1})
    rows = alive(("A", 1.0, 1, 3.0), ("B", 3.0, 1, 3.0))
    search(rows)
    assert sc.log == [("build", "A"), ("sim", "A", 1)]  # then B's $3 bound is not below the $3 confirmed
    assert by_gpu(rows)["B"]["failed"] == "cost"
    assert by_gpu(rows)["B"]["reason"] == ("not built: its roofline bound, $3.00/h is no less than the $3.00/h of the 1 "
                                           "plan(s) confirmed")
    # simulate_top 2: the bar stays open until two are confirmed; a built plan costing exactly the bar is not simulated
    sc = Script(monkeypatch, {"A": (1, 1.0), "B": (1, 1.0), "C": (1, 1.0)}, {"A": 1, "B": 1, "C": 1})
    rows = alive(("A", 1.0, 1, 3.0), ("B", 2.0, 1, 4.0), ("C", 2.5, 1, 4.0))
    s = search(rows, simulate_top=2)
    assert [e for e in sc.log if e[0] == "sim"] == [("sim", "A", 1), ("sim", "B", 1)]
    assert s.confirmed == [3.0, 4.0] and s.bar() == 4.0
    c = by_gpu(rows)["C"]
    assert c["status"] == "meets (mean-value)"  # built at $4, not below the $4 bar: left unsimulated


def test_the_bar_is_open_until_enough_plans_are_confirmed():
    s = slo_search.Search(SPEC, [], slo.Workload(1, 10, 10), TG, cands(simulate_top=2))
    assert s.bar() == math.inf
    s.confirmed = [5.0]
    assert s.bar() == math.inf
    s.confirmed = [5.0, 3.0]
    assert s.bar() == 5.0  # the dearest of those confirmed
    s.confirmed = [5.0, 3.0, 7.0]
    assert s.bar() == 7.0
    s.run()  # nothing alive: nothing built or simulated
    assert (s.built, s.simulations) == (0, 0)


def test_plans_the_screen_rejects_are_not_simulated(monkeypatch):
    sc = Script(monkeypatch, {"A": None, "B": (1, 1.0)}, {"B": 1})
    rows = alive(("A", 1.0, 1, 1.0), ("B", 2.0, 1, 3.0))
    s = search(rows)
    assert sc.log == [("build", "A"), ("build", "B"), ("sim", "B", 1)] and s.built == 2
    assert by_gpu(rows)["A"]["status"] == "rejected" and by_gpu(rows)["A"]["failed"] == "ttft"


# ------------------------------------------------------------------ tiers 2 and 3 together


def test_screen_then_simulate_then_one_more_replica(plans, linear, queue):
    # 12 requests/s, TTFT <= 0.55 s in the mean: batch 5 at 2.5 requests/s, 5 replicas ($15/h at $3). Simulated
    # p90 TTFT = 0.3 x the rate per replica: 0.3 x 12 / 5 = 0.72 s > 0.55 on 5 replicas, 0.3 x 2 = 0.6 s on 6,
    # 0.3 x 12 / 7 = 0.514 s <= 0.55 on 7 ($21/h)
    queue.coef = 0.3
    rows = [fresh(usd_per_hour_lower_bound=1.0)]
    s = slo_search.Search(SPEC, rows, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.55), cands())
    s.run()
    r = rows[0]
    assert [c[:2] for c in plans.calls] == [(SPEC, "H100-SXM")]
    assert [c["rate"] for c in queue.calls] == pytest.approx([2.4, 2.0, 12 / 7])
    assert (r["status"], r["replicas"], r["usd_per_hour"], r["gpus_total"]) == ("meets", 7, 21.0, 7)
    assert r["reason"] == "needed 2 more replica(s) than the mean-value estimate"
    assert r["mean_ttft_s"] == pytest.approx(0.5) and r["sim_ttft_p90_s"] == pytest.approx(0.3 * 12 / 7)
