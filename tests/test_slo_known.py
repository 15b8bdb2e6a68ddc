"""The SLO search (planner/slo.py) on stubbed metrics, so each number it derives is checkable by hand.

``serving.evaluate`` and ``simulate.simulate`` are replaced by simple functions of the batch and the
per-replica rate; the plans themselves are real (the in-code H100 of tests/synthetic.py, or a
bundled GPU where the search needs one by name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from synthetic import H100, RUNTIME, TABLE
from test_kv_known import LLAMA31_8B

from planner import slo
from planner.errors import PlannerInputError
from planner.memory import Deployment, MemoryModel
from planner.serving import Plan
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, build_timing

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")


def synthetic_plan(gpu=H100, dep: Deployment | None = None) -> Plan:
    d = dep or Deployment()
    return Plan(MemoryModel.build(SPEC, gpu, d, TABLE, RUNTIME),
                build_timing(SPEC, gpu, d, TABLE, Efficiency(), KernelFactor()), "datasheet")


@pytest.fixture
def on_synthetic_gpus(monkeypatch):
    """api.build_plan on in-code GPUs: the H100 ($3/h), 'cheap' ($1/h), 'free' (no price); the
    deployment the search asks for is built as asked (tests/synthetic.py's bf16 and q4 formats)."""
    gpus = {"H100-test": H100, "cheap": replace(H100, id="cheap", price_usd_per_hour=1.0),
            "free": replace(H100, id="free", price_usd_per_hour=0.0)}
    asked = []

    def build_plan(spec, gpu, dep):
        from planner.memory import check_parallelism
        asked.append(dep)
        check_parallelism(spec, dep)
        return synthetic_plan(gpus[gpu], dep)
    monkeypatch.setattr(slo.api, "build_plan", build_plan)
    return asked


@pytest.fixture
def linear_metrics(monkeypatch):
    """Mean metrics that grow with the batch b: TTFT b / 10 s, TPOT b / 100 s, e2e b s, b / 2 requests/s."""
    def evaluate(plan, b, p, o):
        b = np.asarray(b, dtype=float)
        return {"ttft_s": b / 10, "tpot_s": b / 100, "e2e_latency_s": 1.0 * b, "requests_per_s": b / 2}
    monkeypatch.setattr(slo, "evaluate", evaluate)


@dataclass
class FakeSim:
    ttft: float
    stable: bool = True
    mean_running: float = 3.0
    preemptions: int = 0

    def percentile(self, metric, q):
        return {"ttft": self.ttft, "tpot": 0.01, "e2e": 1.6}[metric]


class Queueing:
    """Simulated p-th TTFT = ``coef`` s (per GPU id: ``coefs``) x the rate per replica (requests/s);
    records each call."""

    def __init__(self):
        self.coef, self.coefs, self.calls, self.args = 0.2, {}, [], []

    def __call__(self, timing, rate, prompts, outputs, kv_bytes, max_num_seqs, seed):
        self.calls.append((rate, max_num_seqs, len(prompts), seed))
        self.args.append((timing.gpu.id, set(prompts), set(outputs), kv_bytes))
        return FakeSim(ttft=self.coefs.get(timing.gpu.id, self.coef) * rate)


@pytest.fixture
def queueing_sim(monkeypatch):
    q = Queueing()
    monkeypatch.setattr(slo, "simulate", q)
    return q


def cands(**kw) -> slo.Candidates:
    return slo.Candidates(**{"gpus": ("H100-test",), "max_batch": 8, "simulate_top": 1, "sim_requests": 50, **kw})


def test_replicas_are_the_rate_over_the_best_batchs_throughput_rounded_up(on_synthetic_gpus, linear_metrics):
    # TTFT b / 10 <= 0.55 s holds up to batch 5, which serves 0.5 x 5 = 2.5 requests/s; 12 requests/s
    # need ceil(12 / 2.5) = ceil(4.8) = 5 replicas
    row = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.55), cands())
    assert row["status"] == "screened"
    assert (row["batch"], row["max_batch_memory"], row["replicas"]) == (5, 8, 5)
    assert row["requests_per_s_per_replica"] == pytest.approx(2.5)
    assert (row["mean_ttft_s"], row["mean_tpot_s"], row["mean_e2e_s"]) == pytest.approx((0.5, 0.05, 5.0))
    assert row["latency_headroom"] == pytest.approx(1 - 0.5 / 0.55)
    assert row["gpus_per_replica"] == 1 and row["price_usd_per_gpu_hour"] == 3.0
    # 11 requests/s: 4.4 replicas' worth -> 5 (4 would serve only 10)
    assert slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(11, 1000, 100), slo.Targets(ttft_s=0.55),
                       cands())["replicas"] == 5
    # 10 requests/s at 2.5 each: exactly 4 replicas, not 5
    assert slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(10, 1000, 100), slo.Targets(ttft_s=0.55),
                       cands())["replicas"] == 4
    # a rate one replica covers: 1 replica
    assert slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(0.1, 1000, 100), slo.Targets(ttft_s=0.55),
                       cands())["replicas"] == 1
    # two targets: TTFT b / 10 <= 0.55 (b <= 5) and TPOT b / 100 <= 0.035 (b <= 3): batch 3 at 1.5 requests/s,
    # ceil(12 / 1.5) = 8 replicas; the headroom is the tighter target's: min(1 - 0.3 / 0.55, 1 - 0.03 / 0.035)
    two = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(12, 1000, 100),
                      slo.Targets(ttft_s=0.55, tpot_s=0.035), cands())
    assert (two["batch"], two["replicas"]) == (3, 8)
    assert two["latency_headroom"] == pytest.approx(1 - 0.03 / 0.035)
    # the end-to-end target reads the e2e column: b <= 2.5 -> batch 2
    assert slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(12, 1000, 100), slo.Targets(e2e_s=2.5),
                       cands())["batch"] == 2
    # the largest batch considered is the memory's at the average length, capped by max_batch
    assert slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(12, 1000, 100), slo.Targets(ttft_s=100),
                       cands(max_batch=3))["batch"] == 3


def test_cost_of_a_deployment():
    # 5 replicas of TP=2 at $2.50 per GPU-hour: 10 GPUs, $25 / h; at 12 requests/s of 200 output tokens:
    # $25 / (12 x 200 x 3600 tokens) x 1e6 = $2.8935 per 1M output tokens; $25 / (12 x 3600) x 1e6 = $578.70
    # per 1M requests; capacity 5 x 2.5 = 12.5 requests/s for 12: headroom 1 - 12 / 12.5 = 0.04
    row = {"replicas": 5, "gpus_per_replica": 2, "price_usd_per_gpu_hour": 2.5, "requests_per_s_per_replica": 2.5}
    slo._cost(row, slo.Workload(12, 1000, 200))
    assert row["gpus_total"] == 10 and row["usd_per_hour"] == 25.0
    assert row["cost_usd_per_1m_output_tokens"] == pytest.approx(25 / (12 * 200 * 3600) * 1e6)
    assert row["cost_usd_per_1m_requests"] == pytest.approx(25 / (12 * 3600) * 1e6, rel=1e-12)
    assert row["capacity_headroom"] == pytest.approx(0.04)


def test_a_batch_of_one_that_misses_is_rejected_naming_the_target(on_synthetic_gpus, linear_metrics):
    # batch 1: TTFT 0.1 s > 0.05 s and TPOT 0.01 s > 0.005 s; e2e 1 s meets 2 s
    row = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 1000, 100),
                      slo.Targets(ttft_s=0.05, tpot_s=0.005, e2e_s=2.0), cands())
    assert (row["status"], row["failed"]) == ("rejected", "ttft")
    assert row["reason"] == ("latency at batch 1 (mean): TTFT 0.1 s > 0.05 s, TPOT 0.01 s > 0.005 s; more replicas "
                             "cannot help (a faster GPU, more TP or a smaller format can)")
    only_tpot = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 1000, 100),
                            slo.Targets(ttft_s=1.0, tpot_s=0.005), cands())
    assert only_tpot["failed"] == "tpot"
    assert only_tpot["reason"].startswith("latency at batch 1 (mean): TPOT 0.01 s > 0.005 s; ")


def test_memory_and_price_and_input_rejections(on_synthetic_gpus, linear_metrics):
    # 500,000 + 2 tokens: 31,251 blocks of 16 = 500,016 tokens x 131,072 B = 65,538,097,152 B of KV
    # + 16,060,522,496 B weights + activations 8192 x 102,400 + (max_num_seqs = max_batch 8) x 128,256 x 4
    # = 842,964,992 B + 214,748,364.8 B non-torch = 82,656,333,004.8 B = 76.98 GiB, of 81,559 MiB x 0.9
    # = 71.68 GiB
    row = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 500_000, 2), slo.Targets(ttft_s=10), cands())
    assert (row["status"], row["failed"]) == ("rejected", "memory")
    assert row["reason"] == ("memory: one request of 500000+2 tokens needs 77.0 GiB per GPU, 71.7 GiB available "
                             "(add TP, quantize weights or KV)")
    free = slo._screen(SPEC, "free", 1, "bf16", "bf16", slo.Workload(1, 1000, 2), slo.Targets(ttft_s=10), cands())
    assert (free["status"], free["failed"], free["reason"]) == ("rejected", "price", "free has no price in its profile")
    bad = slo._screen(SPEC, "H100-test", 3, "bf16", "bf16", slo.Workload(1, 1000, 2), slo.Targets(ttft_s=10), cands())
    assert (bad["status"], bad["failed"]) == ("rejected", "input")
    assert "32 attention heads do not split over 3 GPUs" in bad["reason"]
    assert (bad["gpu"], bad["tp"], bad["weights"], bad["kv_dtype"], bad["engine"]) == ("H100-test", 3, "bf16", "bf16", "paged")


def test_simulation_adds_replicas_until_the_percentile_meets(on_synthetic_gpus, linear_metrics, queueing_sim):
    # Screen: TTFT b / 10 <= 0.5 up to batch 5 (2.5 requests/s): 12 requests/s -> ceil(4.8) = 5 replicas.
    # Simulated p90 TTFT 0.2 x 12 / 5 = 0.48 s meets 0.5 s at once.
    wl, tg = slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5)
    df = slo.plan_capacity(SPEC, wl, tg, cands(seed=7))
    r = df.iloc[0]
    assert (r["status"], r["replicas"], r["reason"]) == ("meets", 5, "")
    assert r["sim_ttft_p90_s"] == pytest.approx(0.48)
    assert (r["sim_tpot_p90_s"], r["sim_e2e_p90_s"]) == (0.01, 1.6)
    # rate per replica, max_num_seqs = the screened batch, the requests drawn, the seed
    assert queueing_sim.calls == [(12 / 5, 5, 50, 7)]
    assert r["latency_headroom"] == pytest.approx(1 - 0.48 / 0.5)
    assert (r["sim_mean_running"], r["sim_preemptions"], r["sim_stable"]) == (3.0, 0, True)
    assert pd_isna(r.get("failed"))
    # a slower queue, 0.25 s per request/s: 5 replicas -> 0.6 s misses, 6 -> 0.25 x 2 = 0.5 s meets
    queueing_sim.coef, queueing_sim.calls = 0.25, []
    df = slo.plan_capacity(SPEC, wl, tg, cands())
    r = df.iloc[0]
    assert (r["status"], r["replicas"]) == ("meets", 6)
    assert r["reason"] == "needed 1 more replica(s) than the mean-value estimate"
    assert [c[0] for c in queueing_sim.calls] == pytest.approx([12 / 5, 12 / 6])
    # the cost follows the replicas: 6 GPUs at $3/h; capacity 6 x 2.5 requests/s for 12
    assert (r["gpus_total"], r["usd_per_hour"]) == (6, 18.0)
    assert r["cost_usd_per_1m_output_tokens"] == pytest.approx(18 / (12 * 100 * 3600) * 1e6)
    assert r["capacity_headroom"] == pytest.approx(1 - 12 / (6 * 2.5))
    assert pd_isna(r.get("failed"))


def pd_isna(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def test_simulation_gives_up_after_the_extra_replicas(on_synthetic_gpus, linear_metrics, queueing_sim):
    # 2 s per request/s: 5 replicas -> 2 x 12 / 5 = 4.8 s, 6 -> 4 s, 7 -> 3.43 s, all over 0.5 s;
    # two extra replicas allowed: rejected at 7, naming the last miss
    queueing_sim.coef = 2.0
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5), cands(max_extra_replicas=2))
    r = df.iloc[0]
    assert (r["status"], r["failed"], r["replicas"]) == ("rejected", "ttft", 7)
    assert r["reason"] == "simulated with up to 7 replicas: p90 TTFT 3.43 s > 0.5 s"
    assert r["latency_headroom"] == pytest.approx(1 - 24 / 7 / 0.5)
    assert len(queueing_sim.calls) == 3
    # two targets missed: the first names the failure, the reason lists both. The screen: e2e b <= 1.5
    # -> batch 1 (0.5 requests/s), 24 replicas; simulated TTFT 2 x 12 / 24 = 1 s, e2e 1.6 s
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5, e2e_s=1.5, percentile=95),
                           cands(max_extra_replicas=0))
    r = df.iloc[0]
    assert (r["status"], r["failed"], r["replicas"]) == ("rejected", "ttft", 24)
    assert r["reason"] == "simulated with up to 24 replicas: p95 TTFT 1 s > 0.5 s; p95 E2E 1.6 s > 1.5 s"


def test_an_unstable_queue_is_rejected(on_synthetic_gpus, linear_metrics, monkeypatch):
    monkeypatch.setattr(slo, "simulate", lambda *a, **k: FakeSim(ttft=0.1, stable=False))
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5, percentile=99),
                           cands(max_extra_replicas=0))
    r = df.iloc[0]
    assert (r["status"], r["failed"], r["replicas"]) == ("rejected", "unstable", 5)
    assert r["reason"] == "simulated with up to 5 replicas: queue grows without bound at this rate"
    assert r["sim_ttft_p99_s"] == float("inf") and r["sim_stable"] == False  # noqa: E712


def test_ranking_simulates_the_cheapest_and_lists_the_rest(on_synthetic_gpus, linear_metrics, queueing_sim):
    # Two GPUs, same metrics: 'cheap' ($1/h) and the H100 ($3/h), 5 replicas each at 12 requests/s;
    # TP=3 does not split 32 heads. With simulate_top=1 only the cheapest is simulated; the H100 is
    # dearer than the confirmed plan, so it stays a mean-value estimate.
    cand = cands(gpus=("H100-test", "cheap"), tps=(1, 3))
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5), cand)
    assert list(df["gpu"]) == ["cheap", "H100-test", "H100-test", "cheap"]
    assert list(df["status"]) == ["meets", "meets (mean-value)", "rejected", "rejected"]
    assert list(df["usd_per_hour"][:2]) == [5.0, 15.0]
    assert df["reason"][1] == "not simulated: meets the targets in the mean-value model"
    assert len(queueing_sim.calls) == 1
    assert str(df["replicas"].dtype) == "Int64" and str(df["batch"].dtype) == "Int64"
    assert "_plan" not in df.columns and "_rank" not in df.columns
    assert df.attrs["workload"] == {"request_rate_per_s": 12, "prompt_tokens": 1000, "output_tokens": 100,
                                    "distribution": "fixed"}
    assert df.attrs["targets"] == {"ttft_s": 0.5, "tpot_s": None, "e2e_s": None, "percentile": 90}
    # simulate_top=2: both simulated and confirmed
    df2 = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                            cands(gpus=("H100-test", "cheap"), simulate_top=2))
    assert list(df2["status"]) == ["meets", "meets"]
    # a plan over max_gpus is rejected for its size: 5 replicas > 4 GPUs
    df3 = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5), cands(max_gpus=4))
    assert (df3["status"][0], df3["failed"][0], df3["reason"][0]) == ("rejected", "size", "needs 5 GPUs, over the limit of 4")


def test_every_candidate_rejected_still_gives_a_table(on_synthetic_gpus, linear_metrics):
    df = slo.plan_capacity(SPEC, slo.Workload(1, 1000, 100), slo.Targets(ttft_s=0.01), cands(tps=(1, 3)))
    assert list(df["status"]) == ["rejected", "rejected"]
    assert df["usd_per_hour"].isna().all() and df["requests_per_s_per_replica"].isna().all()


def test_the_search_needs_a_target_and_a_gpu():
    with pytest.raises(PlannerInputError, match="no latency target given") as e:
        slo.plan_capacity(SPEC, slo.Workload(1, 10, 10), slo.Targets(), cands())
    assert e.value.field == "targets"
    with pytest.raises(PlannerInputError, match="no candidate GPU types") as e:
        slo.plan_capacity(SPEC, slo.Workload(1, 10, 10), slo.Targets(ttft_s=1), cands(gpus=()))
    assert e.value.field == "gpus"


@pytest.mark.parametrize("rate", [True, 0, -1, 1e6 + 1, "5", float("nan")])
def test_request_rate_limits(rate):
    with pytest.raises(PlannerInputError, match="must be a positive number of requests per second up to 1e6") as e:
        slo.Workload(rate, 10, 10)
    assert e.value.field == "request_rate"


def test_workload_and_target_limits():
    slo.Workload(1e6, 1 << 24, 1 << 24, "uniform")
    slo.Workload(1, 1, 1, "exponential")
    with pytest.raises(PlannerInputError) as e:
        slo.Workload(1, 10, 0)
    assert e.value.field == "output"
    with pytest.raises(PlannerInputError) as e:
        slo.Workload(1, (1 << 24) + 1, 10)
    assert e.value.field == "prompt"
    with pytest.raises(PlannerInputError, match="unknown distribution 'zipf'.*fixed, uniform, exponential"):
        slo.Workload(1, 10, 10, "zipf")
    for bad in (0, -1, float("inf"), float("nan"), "1"):
        with pytest.raises(PlannerInputError, match="must be a positive number of seconds") as e:
            slo.Targets(tpot_s=bad)
        assert e.value.field == "tpot_s"
    with pytest.raises(PlannerInputError, match="75 is not offered.*50, 90, 95, 99") as e:
        slo.Targets(ttft_s=1, percentile=75)
    assert e.value.field == "percentile"
    assert slo.Targets(e2e_s=3, ttft_s=1).items() == [("ttft", 1), ("e2e", 3)]
    assert [slo._mean_column(m) for m in ("ttft", "tpot", "e2e")] == ["ttft_s", "tpot_s", "e2e_latency_s"]


def test_candidate_limits():
    ok = dict(gpus=("H100-test",))
    slo.Candidates(**ok, max_batch=1 << 16, max_gpus=1 << 20, simulate_top=20, sim_requests=1000, max_extra_replicas=16,
                   seed=2**32 - 1)
    slo.Candidates(**ok, simulate_top=2, sim_requests=10_000)  # 20,000: the budget exactly
    for kw, field in ((dict(max_batch=(1 << 16) + 1), "max_batch"), (dict(max_gpus=0), "max_gpus"),
                      (dict(simulate_top=21), "simulate_top"), (dict(sim_requests=10_001), "sim_requests"),
                      (dict(max_extra_replicas=17), "max_extra_replicas"), (dict(seed=-1), "seed"),
                      (dict(seed=2**32), "seed"), (dict(tps=(0,)), "tp"), (dict(tps=[1]), "tps"),
                      (dict(kv_dtypes=["bf16"]), "kv_dtypes")):
        with pytest.raises(PlannerInputError) as e:
            slo.Candidates(**{**ok, **kw})
        assert e.value.field == field, kw
    slo.Candidates(**ok, max_extra_replicas=0, seed=0)
    with pytest.raises(PlannerInputError) as e:
        slo.Candidates(**ok, simulate_top=5, sim_requests=5000)
    assert e.value.field == "sim_requests"
    assert e.value.problem == "5 simulations x 5,000 requests is over the budget of 20,000 simulated requests"
    assert e.value.fix == "lower sim_requests to 4,000 or simulate fewer plans"
    with pytest.raises(PlannerInputError) as e:
        slo.Candidates(gpus=tuple(f"g{i}" for i in range(11)), tps=(1, 2, 4, 8, 16), weights=("a", "b", "c", "d"),
                       kv_dtypes=("bf16", "fp8", "int8", "int4", "fp16", "fp32", "auto", "x", "y", "z"))
    assert e.value.field == "candidates"
    assert e.value.problem == "2,200 GPU x TP x format x KV dtype combinations, over the limit of 2,000"
    # 2,000 exactly is allowed; an empty weights tuple counts as one format
    slo.Candidates(gpus=tuple(f"g{i}" for i in range(10)), tps=(1, 2, 4, 8, 16), weights=("a", "b", "c", "d"),
                   kv_dtypes=tuple(f"k{i}" for i in range(10)))
    slo.Candidates(gpus=tuple(f"g{i}" for i in range(200)), tps=(1, 2, 4, 8, 16), kv_dtypes=tuple(f"k{i}" for i in range(2)))


def test_the_search_builds_the_deployment_it_was_asked_for(on_synthetic_gpus, linear_metrics, queueing_sim):
    wl = slo.Workload(12, 1000, 100)
    df = slo.plan_capacity(SPEC, wl, slo.Targets(ttft_s=0.5), cands(weights=("q4",), kv_dtypes=("fp8",), tps=(2,),
                                                                   max_batch=8))
    dep = on_synthetic_gpus[0]
    assert (dep.weights, dep.kv_dtype, dep.engine, dep.tp, dep.max_num_seqs) == ("q4", "fp8", "paged", 2, 8)
    r = df.iloc[0]
    assert (r["weights"], r["kv_dtype"], r["tp"], r["gpus_per_replica"], r["provenance"]) == ("q4", "fp8", 2, 2, "datasheet")
    # the simulation gets the workload's lengths and the plan's KV room: at TP=2 a rank holds
    # 16,060,522,496 B of bf16 weights split in two (norms 532,480 B replicated)... with q4 layer weights:
    # (6,979,584,000 - 262,144) x 4.5 / 8 / 2 + 262,144 x 2 + 2 x 525,336,576 x 2 / 2 + 4,096 x 2
    weights = (6_979_584_000 - 262_144) * 4.5 / 8 / 2 + 262_144 * 2 + 2 * 525_336_576 + 8_192
    # activations at TP=2: 8192 x 2 x (21,504 + 8,192) + 8 x 128,256 x 4; 0.7 GiB overhead with NCCL
    act = 8192 * 2 * (21_504 + 8_192) + 8 * 128_256 * 4
    room = 81_559 * 2**20 * 0.9 - weights - act - 0.7 * 2**30
    gpu, prompts, outputs, kv_bytes = queueing_sim.args[0]
    assert (gpu, prompts, outputs) == ("H100-test", {1000}, {100})
    assert kv_bytes == pytest.approx(room)
    assert r["kv_capacity_bytes"] == pytest.approx(room)
    # the default weights are the model's own format (bf16 here), the engine the candidates'
    slo.plan_capacity(SPEC, wl, slo.Targets(ttft_s=0.5), cands(engine="transformers"))
    assert (on_synthetic_gpus[-1].weights, on_synthetic_gpus[-1].engine) == ("bf16", "transformers")


def test_the_memory_sets_the_largest_batch_at_the_average_length(on_synthetic_gpus, linear_metrics):
    # max_num_seqs 64: activations 8192 x 102,400 + 64 x 128,256 x 4 = 871,694,336 B; room for KV
    # 76,968,728,985.6 - 16,060,522,496 - 214,748,364.8 - 871,694,336 = 59,821,763,788.8 B. A request
    # of 20,016 + 8,001 tokens holds 20,016 + 8,001 // 2 = 24,016 tokens on average (1,501 blocks):
    # 3,147,825,152 B: floor(19.004) = 19 requests (at the full length, 16; at a third of the output, 20)
    row = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 20_016, 8_001), slo.Targets(ttft_s=100),
                      cands(max_batch=64))
    assert (row["max_batch_memory"], row["batch"]) == (19, 19)
    # 224,208 + 4,000 = 228,208 tokens on average: 29,911,678,976 B each: floor(1.99995) = 1 request
    one = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 224_208, 8_001), slo.Targets(ttft_s=100),
                      cands(max_batch=64))
    assert (one["status"], one["max_batch_memory"], one["batch"]) == ("screened", 1, 1)


def test_a_failed_simulation_moves_on_to_the_next_cheapest(on_synthetic_gpus, linear_metrics, queueing_sim):
    # 'cheap' never meets (its queue: 100 s per request/s); the H100 is simulated next and confirmed
    queueing_sim.coefs = {"cheap": 100.0}
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=("H100-test", "cheap"), max_extra_replicas=0))
    assert list(zip(df["gpu"], df["status"], strict=True)) == [("H100-test", "meets"), ("cheap", "rejected")]
    assert [a[0] for a in queueing_sim.args] == ["cheap", "H100-test"]
    # at most 4 x simulate_top simulations: five failing GPUs, four simulated, the fifth left as estimated
    gpus = {f"g{i}": replace(H100, id=f"g{i}", price_usd_per_hour=1.0 + i) for i in range(5)}
    slo.api.build_plan = lambda spec, gpu, dep: synthetic_plan(gpus[gpu], dep)  # undone by monkeypatch
    queueing_sim.coefs = {g: 100.0 for g in gpus}
    queueing_sim.args.clear()
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=tuple(gpus), max_extra_replicas=0))
    assert len(queueing_sim.args) == 4
    assert list(df["status"]) == ["meets (mean-value)"] + ["rejected"] * 4
    assert df["gpu"][0] == "g4"


def test_a_confirmed_plan_that_grew_dearer_lets_the_next_one_be_simulated(on_synthetic_gpus, linear_metrics,
                                                                            queueing_sim):
    # 'cheap' ($1/h) screens at 5 replicas, but its queue (0.65 s per request/s) needs 0.5 >= 0.65 x 12 / n:
    # n = 16 replicas, $16/h, dearer than the H100's 5 x $3 = $15/h, which is then simulated and meets
    queueing_sim.coefs = {"cheap": 0.65}
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=("H100-test", "cheap"), max_extra_replicas=16))
    assert list(zip(df["gpu"], df["status"], df["usd_per_hour"], strict=True)) == [
        ("H100-test", "meets", 15.0), ("cheap", "meets", 16.0)]
    assert [a[0] for a in queueing_sim.args] == ["cheap"] * 12 + ["H100-test"]  # 5..16 replicas, then the H100
    queueing_sim.args.clear()
    queueing_sim.coefs = {"cheap": 0.6}  # 0.5 >= 0.6 x 12 / n: n = 15 replicas, $15/h: ties the H100
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=("H100-test", "cheap"), max_extra_replicas=16))
    assert [a[0] for a in queueing_sim.args] == ["cheap"] * 11  # 5..15 replicas; $15 is not below $15
    assert list(zip(df["gpu"], df["status"], strict=True)) == [("cheap", "meets"), ("H100-test", "meets (mean-value)")]
    assert df["replicas"][0] == 15
    for c in ("replicas", "gpus_total", "batch", "max_batch_memory", "gpus_per_replica", "sim_preemptions"):
        assert str(df[c].dtype) == "Int64", c


def test_a_target_met_exactly_is_met(on_synthetic_gpus, linear_metrics):
    # batch 1: TTFT 1 / 10 = 0.1 s meets a 0.1 s target exactly; TPOT 0.01 s misses 0.005 s, so only the
    # TPOT target is named
    row = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 1000, 100),
                      slo.Targets(ttft_s=0.1, tpot_s=0.005), cands())
    assert (row["status"], row["failed"]) == ("rejected", "tpot")
    assert row["reason"].startswith("latency at batch 1 (mean): TPOT 0.01 s > 0.005 s; ")


def test_a_plan_of_exactly_max_gpus_is_kept(on_synthetic_gpus, linear_metrics, queueing_sim):
    # 5 replicas of one GPU (test_replicas_are_the_rate_over...): a limit of 5 GPUs allows it
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5), cands(max_gpus=5))
    assert (df["status"][0], df["gpus_total"][0]) == ("meets", 5)


def test_the_memory_rejection_counts_the_whole_output(on_synthetic_gpus, linear_metrics):
    # 400,000 + 200,000 tokens: on average 500,000 held (31,250 blocks = 65,536,000,000 B of KV, plus
    # 17,118,235,852.8 B of weights, activations and non-torch memory, over 76,968,728,985.6 B): not one fits.
    # The reason quotes the full request: 600,000 tokens = 37,500 blocks x 2,097,152 B = 78,643,200,000 B
    # + 16,060,522,496 + 842,964,992 + 214,748,364.8 = 95,761,435,852.8 B = 89.18 GiB
    row = slo._screen(SPEC, "H100-test", 1, "bf16", "bf16", slo.Workload(1, 400_000, 200_000), slo.Targets(ttft_s=10),
                      cands())
    assert (row["status"], row["failed"]) == ("rejected", "memory")
    assert row["reason"].startswith("memory: one request of 400000+200000 tokens needs 89.2 GiB per GPU, 71.7 GiB ")


def test_the_table_names_the_gpu_the_plan_was_built_for(monkeypatch, linear_metrics):
    # a GPU asked for by another name (an alias) is listed under its profile's id
    monkeypatch.setattr(slo.api, "build_plan", lambda spec, gpu, dep: synthetic_plan(H100, dep))
    row = slo._screen(SPEC, "h100", 1, "bf16", "bf16", slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.55), cands())
    assert row["gpu"] == "H100-test"


@pytest.fixture
def two_gpus_one_price(monkeypatch, queueing_sim):
    """'slow' and 'fast', both $3 per GPU-hour; the mean metrics of ``linear_metrics``, but 'fast' serves
    4 % more requests per second at each batch (b / 2 x 1.04)."""
    gpus = {g: replace(H100, id=g) for g in ("slow", "fast")}
    monkeypatch.setattr(slo.api, "build_plan", lambda spec, gpu, dep: synthetic_plan(gpus[gpu], dep))

    def evaluate(plan, b, p, o):
        b = np.asarray(b, dtype=float)
        speed = 1.04 if plan.memory.gpu.id == "fast" else 1.0
        return {"ttft_s": b / 10, "tpot_s": b / 100, "e2e_latency_s": 1.0 * b, "requests_per_s": b / 2 * speed}
    monkeypatch.setattr(slo, "evaluate", evaluate)
    return queueing_sim


def test_equal_cost_plans_rank_by_throughput(two_gpus_one_price):
    # TTFT b / 10 <= 0.5: batch 5 on both; 'slow' serves 2.5 requests/s, 'fast' 2.6: at 12 requests/s
    # ceil(4.8) = 5 and ceil(4.62) = 5 replicas, $15/h each. The one with more throughput to spare is
    # simulated first (and, confirmed, leaves the other unsimulated: $15 is not below $15)
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=("slow", "fast")))
    assert [a[0] for a in two_gpus_one_price.args] == ["fast"]
    assert list(zip(df["gpu"], df["status"], strict=True)) == [("fast", "meets"), ("slow", "meets (mean-value)")]
    # both simulated and confirmed: the same order within the same status and cost
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=("slow", "fast"), simulate_top=2))
    assert list(zip(df["gpu"], df["status"], strict=True)) == [("fast", "meets"), ("slow", "meets")]
    assert list(df["requests_per_s_per_replica"]) == pytest.approx([2.6, 2.5])
    assert list(df.index) == [0, 1] and "index" not in df.columns


def test_at_most_four_simulations_per_plan_asked_for(on_synthetic_gpus, linear_metrics, queueing_sim, monkeypatch):
    # five GPUs whose simulations all fail: simulate_top=2 allows 4 x 2 = 8 simulations, so all five run
    gpus = {f"g{i}": replace(H100, id=f"g{i}", price_usd_per_hour=1.0 + i) for i in range(5)}
    monkeypatch.setattr(slo.api, "build_plan", lambda spec, gpu, dep: synthetic_plan(gpus[gpu], dep))
    queueing_sim.coefs = {g: 100.0 for g in gpus}
    df = slo.plan_capacity(SPEC, slo.Workload(12, 1000, 100), slo.Targets(ttft_s=0.5),
                           cands(gpus=tuple(gpus), max_extra_replicas=0, simulate_top=2))
    assert [a[0] for a in queueing_sim.args] == ["g0", "g1", "g2", "g3", "g4"]
    assert list(df["status"]) == ["rejected"] * 5


def test_the_simulated_lengths_follow_the_seed(on_synthetic_gpus, linear_metrics, queueing_sim):
    # uniform lengths are drawn from the candidates' seed: the same seed draws the same requests
    wl = slo.Workload(12, 1000, 100, "uniform")
    for _ in range(2):
        slo.plan_capacity(SPEC, wl, slo.Targets(ttft_s=0.5), cands(seed=3))
    slo.plan_capacity(SPEC, wl, slo.Targets(ttft_s=0.5), cands(seed=4))
    (_, p1, o1, _), (_, p2, o2, _), (_, p3, _, _) = queueing_sim.args
    assert (p1, o1) == (p2, o2) and len(p1) > 1
    assert p3 != p1


def test_more_input_limits():
    with pytest.raises(PlannerInputError) as e:
        slo.Workload(1, 10, (1 << 24) + 1)
    assert e.value.field == "output"
    ok = dict(gpus=("H100-test",))
    slo.Candidates(**ok, tps=(1024,))
    for kw, field in ((dict(tps=(1025,)), "tp"), (dict(max_gpus=(1 << 20) + 1), "max_gpus")):
        with pytest.raises(PlannerInputError) as e:
            slo.Candidates(**{**ok, **kw})
        assert e.value.field == field, kw
