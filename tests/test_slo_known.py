"""The SLO search's request types, tier 1 and its table (planner/slo.py), with the bound and the later
tiers stubbed so each test runs in milliseconds and each expected value is written by hand.

Seams: ``slo.slo_bound.bound`` (tier 1's arithmetic, tested in test_slo_bound_known.py),
``slo.api.efficiency_for`` and ``slo.search.Search`` (tiers 2 and 3, test_slo_search_known.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_kv_known import LLAMA31_8B

from planner import profiles, slo, slo_space
from planner.errors import PlannerInputError
from planner.memory import MAX_BATCH, MAX_CONTEXT
from planner.spec import ModelSpec

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "Llama-3.1-8B")  # 32 heads, 8 KV heads
ENGINES = Path(__file__).resolve().parent.parent / "profiles" / "engines"
pytestmark = pytest.mark.skipif(not {"H100-SXM", "L4"} <= set(profiles.gpus()), reason="needs the bundled GPU profiles")


def refused(field, fn, *a, **kw) -> PlannerInputError:
    with pytest.raises(PlannerInputError) as e:
        fn(*a, **kw)
    assert e.value.field == field, (e.value.field, str(e.value))
    return e.value


# ------------------------------------------------------------------ the request


def test_a_workload_takes_a_rate_or_a_batch_within_limits():
    assert slo.Workload(1e6, MAX_CONTEXT, MAX_CONTEXT).request_rate_per_s == 1e6
    assert slo.Workload(5, 1, 1).request_rate_per_s == 5  # a whole number is a rate too
    e = refused("request_rate", slo.Workload, 0, 10, 10)
    assert str(e) == "request_rate: must be a positive number of requests per second up to 1e6, got 0 (e.g. 5)"
    for bad in (-1, 1e6 * (1 + 1e-12), math.inf, math.nan, True, "5"):
        refused("request_rate", slo.Workload, bad, 10, 10)
    for field, kw in (("prompt", {"prompt_tokens": 0}), ("prompt", {"prompt_tokens": MAX_CONTEXT + 1}),
                      ("output", {"output_tokens": 0}), ("output", {"output_tokens": MAX_CONTEXT + 1}),
                      ("batch", {"batch": 0}), ("batch", {"batch": MAX_BATCH + 1}),
                      ("max_tokens", {"max_tokens": 0}), ("max_tokens", {"max_tokens": MAX_CONTEXT + 1})):
        refused(field, slo.Workload, **{"request_rate_per_s": 1, "prompt_tokens": 10, "output_tokens": 10, **kw})
    e = refused("distribution", slo.Workload, 1, 10, 10, "zipf")
    assert str(e) == "distribution: unknown distribution 'zipf' (choose one of fixed, uniform, exponential, spread)"
    # closed loop: a batch and no rate; neither is refused
    assert slo.Workload(None, 10, 10, batch=MAX_BATCH).batch == MAX_BATCH
    e = refused("workload", slo.Workload, None, 10, 10)
    assert str(e) == ("workload: has neither a request rate nor a batch (give request_rate_per_s (open loop) or batch "
                      "(closed loop))")
    assert slo.Workload(1, 10, 10, max_tokens=MAX_CONTEXT).max_tokens == MAX_CONTEXT


def test_targets_are_positive_finite_seconds_at_an_offered_percentile():
    t = slo.Targets(e2e_s=3, ttft_s=0.5)
    assert t.percentile == 90 and t.items() == [("ttft", 0.5), ("e2e", 3)]
    assert slo.Targets(tpot_s=0.1, e2e_s=2, ttft_s=1).items() == [("ttft", 1), ("tpot", 0.1), ("e2e", 2)]
    assert slo.Targets().items() == []
    for name in ("ttft_s", "tpot_s", "e2e_s"):
        for bad in (0, -1, math.inf, math.nan, "1"):
            e = refused(name, slo.Targets, **{name: bad})
        assert str(e) == f"{name}: must be a positive number of seconds, got '1' (or leave it out)"
    for q in (50, 90, 95, 99):
        assert slo.Targets(ttft_s=1, percentile=q).percentile == q
    e = refused("percentile", slo.Targets, ttft_s=1, percentile=80)
    assert str(e) == "percentile: 80 is not offered (choose one of 50, 90, 95, 99)"


def test_candidates_limits():
    ok = slo.Candidates(max_batch=slo.MAX_SLO_BATCH, max_gpus=1 << 20, simulate_top=2, sim_requests=10_000,
                        max_extra_replicas=slo.MAX_EXTRA_REPLICAS, seed=2**32 - 1)
    assert ok.simulate_top * ok.sim_requests == slo.SIM_BUDGET == 20_000
    assert slo.Candidates(max_extra_replicas=0, seed=0, simulate_top=20, sim_requests=1000).seed == 0
    for field, kw in (("max_batch", {"max_batch": 0}), ("max_batch", {"max_batch": (1 << 16) + 1}),
                      ("max_gpus", {"max_gpus": 0}), ("max_gpus", {"max_gpus": (1 << 20) + 1}),
                      ("simulate_top", {"simulate_top": 0}), ("simulate_top", {"simulate_top": 21}),
                      ("sim_requests", {"sim_requests": 0}), ("sim_requests", {"sim_requests": 10_001}),
                      ("max_extra_replicas", {"max_extra_replicas": -1}),
                      ("max_extra_replicas", {"max_extra_replicas": 17}),
                      ("seed", {"seed": -1}), ("seed", {"seed": 2**32})):
        refused(field, slo.Candidates, **kw)
    # 3 x 10,000 simulated requests is over the 20,000 budget: 20,000 // 3 = 6,666 a simulation would fit
    e = refused("sim_requests", slo.Candidates, simulate_top=3, sim_requests=10_000)
    assert str(e) == ("sim_requests: 3 simulations x 10,000 requests is over the budget of 20,000 simulated requests "
                      "(lower sim_requests to 6,666 or simulate fewer plans)")
    e = refused("server", slo.Candidates, server="ollama")
    assert str(e) == "server: unknown serving engine 'ollama' (choose one of vllm, sglang, trtllm)"
    for name in ("gpus", "tps", "weights", "kv_dtypes", "pps"):
        e = refused(name, slo.Candidates, **{name: ["x"]})
        assert str(e) == f"{name}: must be a tuple (pass {name} as a tuple)"
    for field, kw in (("tp", {"tps": (2, 0)}), ("tp", {"tps": (1025,)}), ("pp", {"pps": (0,)}), ("pp", {"pps": (1025,)})):
        refused(field, slo.Candidates, **kw)
    assert slo.Candidates(tps=(1024,), pps=(1024,)).tps == (1024,)


def test_the_candidate_count_is_limited():
    # 10 GPUs x 5 TP x 5 formats x 8 KV dtypes = 2,000: the limit, allowed (no PP list counts once)
    kw = {"gpus": ("g",) * 10, "tps": (1,) * 5, "weights": ("w",) * 5}
    assert len(slo.Candidates(kv_dtypes=("k",) * 8, **kw).kv_dtypes) == 8
    assert len(slo.Candidates(kv_dtypes=("k",) * 8, pps=(1,), **kw).pps) == 1
    # ... x 9 KV dtypes = 2,250
    e = refused("candidates", slo.Candidates, kv_dtypes=("k",) * 9, **kw)
    assert str(e) == ("candidates: 2,250 GPU x TP x format x KV dtype combinations, over the limit of 2,000 (list fewer "
                      "GPUs, TP degrees, formats or KV dtypes)")
    # 1,000 x 3 PP degrees = 3,000
    refused("candidates", slo.Candidates, kv_dtypes=("k",) * 4, pps=(1, 2, 4), **kw)
    assert slo.Candidates(kv_dtypes=("k",) * 4, pps=(1, 2), **kw).pps == (1, 2)  # 2,000
    slo.Candidates()  # the default space (every bundled GPU x 4 TP x 4 formats x 2 KV dtypes) is within it


def test_a_candidate_row_becomes_the_deployment_asked_for():
    c = slo.Candidates(engine="paged", server="sglang", server_version="0.5.0", max_batch=64)
    d = c.deployment({"weights": "fp8", "kv_dtype": "fp8", "tp": 4, "pp": 2})
    assert (d.weights, d.kv_dtype, d.engine, d.tp, d.pp, d.max_num_seqs, d.server, d.server_version) == (
        "fp8", "fp8", "paged", 4, 2, 64, "sglang", "0.5.0")
    assert slo.Candidates(engine="transformers").deployment(
        {"weights": "bf16", "kv_dtype": "bf16", "tp": 1, "pp": 1}).engine == "transformers"


def test_the_engine_version_searched_is_the_newest_unless_named():
    newest = json.loads((ENGINES / "vllm.json").read_text())["newest"]
    assert slo._server_version(slo.Candidates()) == newest
    assert slo._server_version(slo.Candidates(server="sglang")) == json.loads((ENGINES / "sglang.json").read_text())["newest"]
    assert slo._server_version(slo.Candidates(server_version="0.10.2")) == "0.10.2"
    assert slo._server_version(slo.Candidates(engine="transformers", server_version="0.0.1")) == ""
    refused("engine_version", slo._server_version, slo.Candidates(server_version="0.0.1"))


# ------------------------------------------------------------------ a candidate's row and tier 1


def test_a_point_becomes_a_row():
    c = slo.Candidates(server="sglang")
    r = slo._row(slo_space.Point("H100-SXM", 2, 4, "fp8", "bf16", note="PP: why"), c, "0.5.1")
    assert r == {"gpu": "H100-SXM", "tp": 2, "pp": 4, "weights": "fp8", "kv_dtype": "bf16", "engine": "paged",
                 "server": "sglang", "server_version": "0.5.1", "gpus_per_replica": 8, "price_usd_per_gpu_hour": 2.95,
                 "evaluated_by": "bound", "status": "screened", "note": "PP: why"}
    hf = slo._row(slo_space.Point("L4", 1, 1, "bf16", "bf16"), slo.Candidates(engine="transformers"), "0.33.0")
    assert (hf["engine"], hf["server"], hf["server_version"], hf["price_usd_per_gpu_hour"]) == ("transformers", "", "",
                                                                                              0.8048)
    bad = slo._row(slo_space.Point("L4", 3, 1, "bf16", "bf16", error="tp: 32 heads do not split over 3"),
                   slo.Candidates(), "0.33.0")
    assert (bad["status"], bad["failed"], bad["reason"]) == ("rejected", "input", "tp: 32 heads do not split over 3")


@pytest.fixture
def bound(monkeypatch):
    """slo_bound.bound -> ``st.out[(gpu id, tp)]`` (default: 1 GPU, 4 requests/s, 3 replicas, $9/h);
    api.efficiency_for -> ``("eff", gpu id, engine)``; both record their calls."""
    st = SimpleNamespace(out={}, calls=[], effs=[])

    def fake(spec, g, dep, eff, rate, prompt, output, targets, max_batch):
        st.calls.append(dict(spec=spec, gpu=g.id, dep=dep, eff=eff, rate=rate, prompt=prompt, output=output,
                             targets=targets, max_batch=max_batch))
        return st.out.get((g.id, dep.tp), {"gpus_per_replica": dep.tp * dep.pp, "requests_per_s_ub": 4.0,
                                           "replicas_lb": 3, "usd_per_hour_lb": 9.0})

    def efficiency_for(gpu_id, engine):
        st.effs.append((gpu_id, engine))
        return ("eff", gpu_id, engine)

    monkeypatch.setattr(slo.slo_bound, "bound", fake)
    monkeypatch.setattr(slo.api, "efficiency_for", efficiency_for)
    return st


def tier1(row, wl=None, tg=None, cand=None, effs=None):
    cand = cand or slo.Candidates(max_batch=64)
    return slo._bound(SPEC, row, wl or slo.Workload(12, 1000, 100, max_tokens=60), tg or slo.Targets(ttft_s=1, e2e_s=9),
                      cand, {} if effs is None else effs)


def row_of(gpu="H100-SXM", tp=1, pp=1, cand=None):
    return slo._row(slo_space.Point(gpu, tp, pp, "bf16", "bf16"), cand or slo.Candidates(max_batch=64), "0.33.0")


def test_tier1_passes_the_bound_what_the_search_asks_and_records_it(bound):
    effs = {}
    r = tier1(row_of(tp=2), effs=effs)
    (c,) = bound.calls
    # the GPU's profile, the deployment as planned, its efficiency, the rate, the prompt, the mean output the
    # max_tokens cap leaves (60 of a fixed 100), the targets in order and the batch limit
    assert (c["spec"], c["gpu"], c["rate"], c["prompt"], c["output"], c["max_batch"]) == (SPEC, "H100-SXM", 12, 1000,
                                                                                           60, 64)
    assert c["targets"] == [("ttft", 1), ("e2e", 9)]
    assert (c["dep"].tp, c["dep"].max_num_seqs, c["dep"].server_version) == (2, 64, None)
    assert c["eff"] == ("eff", "H100-SXM", "paged") and effs == {"H100-SXM": c["eff"]}
    assert (r["status"], r["requests_per_s_upper_bound"], r["usd_per_hour_lower_bound"], r["gpus_per_replica"]) == (
        "screened", 4.0, 9.0, 2)
    # a GPU's efficiency is looked up once, under its id, whatever name the row gives
    tier1(row_of(tp=1), effs=effs)
    tier1(row_of(gpu="h100_sxm"), effs=effs)
    assert bound.effs == [("H100-SXM", "paged")] and [c["eff"] for c in bound.calls] == [c["eff"]] * 3
    tier1(row_of(gpu="L4", cand=slo.Candidates(engine="transformers")), cand=slo.Candidates(engine="transformers"),
          effs=effs)
    assert bound.effs[-1] == ("L4", "transformers") and set(effs) == {"H100-SXM", "L4"}


def test_tier1_takes_the_bounds_gpu_count(bound):
    bound.out[("H100-SXM", 2)] = {"gpus_per_replica": 3, "requests_per_s_ub": 4.0, "replicas_lb": 3,
                                  "usd_per_hour_lb": 9.0}
    assert tier1(row_of(tp=2))["gpus_per_replica"] == 3


def test_tier1_rejects_what_the_bound_rejects(bound):
    bound.out[("H100-SXM", 1)] = {"gpus_per_replica": 1, "failed": "tpot", "reason": "latency at batch 1: TPOT"}
    r = tier1(row_of())
    assert (r["status"], r["failed"], r["reason"], r["gpus_per_replica"]) == ("rejected", "tpot",
                                                                               "latency at batch 1: TPOT", 1)
    assert "usd_per_hour_lower_bound" not in r


def test_tier1_rejects_a_rate_that_needs_more_gpus_than_allowed_and_says_what_they_sustain(bound):
    # 6 replicas of 2 GPUs = 12 > 10 allowed; 10 GPUs hold 10 // 2 = 5 replicas of at most 2.5 requests/s = 12.5
    bound.out[("H100-SXM", 2)] = {"gpus_per_replica": 2, "requests_per_s_ub": 2.5, "replicas_lb": 6,
                                  "usd_per_hour_lb": 35.4}
    cand = slo.Candidates(max_batch=64, max_gpus=10)
    r = tier1(row_of(tp=2), cand=cand)
    assert (r["status"], r["failed"], r["sustainable_rate_per_s"]) == ("rejected", "size", 12.5)
    assert r["reason"] == ("needs at least 12 GPUs (roofline bound), over the limit of 10: 10 GPUs sustain at most "
                           "12.5 requests/s")
    assert (r["requests_per_s_upper_bound"], r["usd_per_hour_lower_bound"]) == (2.5, 35.4)
    # 11 allowed: still 5 replicas' worth (11 // 2); exactly 12: allowed
    assert tier1(row_of(tp=2), cand=slo.Candidates(max_batch=64, max_gpus=11))["sustainable_rate_per_s"] == 12.5
    assert tier1(row_of(tp=2), cand=slo.Candidates(max_batch=64, max_gpus=12))["status"] == "screened"


# ------------------------------------------------------------------ plan_capacity


class FakeSearch:
    """Search stand-in: records what reached it; the first alive row meets at $10/h on 2 replicas, the
    rest are left at the mean-value model at $20/h."""

    made: list = []

    def __init__(self, spec, alive, wl, tg, cand):
        self.alive, self.args = alive, (spec, wl, tg, cand)
        self.built, self.simulations, self.simulated = len(alive), 3, {1, 2}
        FakeSearch.made.append(self)

    def run(self):
        for i, r in enumerate(self.alive):
            r.update(status="meets" if i == 0 else "meets (mean-value)", usd_per_hour=10.0 * (i + 1), replicas=2,
                     gpus_total=2 * r["gpus_per_replica"], requests_per_s_per_replica=6.0, batch=8, _plan="x",
                     evaluated_by="simulation" if i == 0 else "mean-value")


@pytest.fixture
def searched(monkeypatch, bound):
    FakeSearch.made = []
    monkeypatch.setattr(slo.search, "Search", FakeSearch)
    return bound


WL, TG = slo.Workload(12, 1000, 100), slo.Targets(ttft_s=1.0)


def test_plan_capacity_rows_attrs_and_verdict(searched):
    searched.out[("L4", 1)] = {"gpus_per_replica": 1, "failed": "ttft", "reason": "TTFT at batch 1"}
    cand = slo.Candidates(gpus=("L4", "H100-SXM", "A40", "NoSuchGPU"), tps=(1, 3), weights=("bf16",),
                          kv_dtypes=("bf16",))
    df = slo.plan_capacity(SPEC, WL, TG, cand)
    # 2 GPUs rejected whole (no price, unknown) + 2 priced GPUs x 2 TP = 6 rows
    assert len(df) == 6 and df.attrs["search"] == {"candidates": 6, "rejected_by_bound": 5, "built": 1,
                                                   "simulated": 2, "simulations": 3}
    (s,) = FakeSearch.made
    assert [(r["gpu"], r["tp"]) for r in s.alive] == [("H100-SXM", 1)]  # TP 3 splits no heads; L4 misses TTFT
    assert s.args == (SPEC, WL, TG, cand)
    # the bound saw the two TP 1 candidates only (TP 3 is an input error before it), for this model
    assert sorted((c["gpu"], c["dep"].tp) for c in searched.calls) == [("H100-SXM", 1), ("L4", 1)]
    assert all(c["spec"] is SPEC for c in searched.calls)
    best = df.iloc[0]
    assert (best["gpu"], best["status"], best["server_version"]) == ("H100-SXM", "meets",
                                                                    json.loads((ENGINES / "vllm.json").read_text())["newest"])
    assert df.attrs["verdict"] == "2 x H100-SXM (2 replica(s) of TP 1, bf16 weights, bf16 KV) at $10.00/h (simulated)"
    by = {(g, t): r for g, t, r in zip(df["gpu"], df["tp"], df.to_dict("records"), strict=True)}
    assert (by[("L4", 1)]["failed"], by[("L4", 1)]["reason"]) == ("ttft", "TTFT at batch 1")
    assert by[("L4", 3)]["failed"] == "input" and "do not split over 3" in by[("L4", 3)]["reason"]
    a40 = df[df["gpu"] == "A40"].iloc[0]
    assert (a40["status"], a40["failed"], a40["evaluated_by"]) == ("rejected", "price", "bound")
    assert a40["reason"] == "A40 has no price in its profile: it cannot be ranked by cost"
    unknown = df[df["gpu"] == "NoSuchGPU"].iloc[0]
    assert unknown["failed"] == "input" and "unknown GPU 'NoSuchGPU'" in unknown["reason"]
    assert "_plan" not in df and df["tp"].dtype == "Int64"
    assert df.attrs["workload"]["request_rate_per_s"] == 12 and df.attrs["targets"]["ttft_s"] == 1.0


def test_plan_capacity_says_when_no_candidate_sustains_the_rate(searched):
    # the default bound: 3 replicas of 1 GPU at most 4 requests/s each; 2 GPUs allowed sustain 2 x 4 = 8
    cand = slo.Candidates(gpus=("H100-SXM",), tps=(1,), weights=("bf16",), kv_dtypes=("bf16",), max_gpus=2)
    df = slo.plan_capacity(SPEC, WL, TG, cand)
    assert FakeSearch.made[0].alive == [] and df["failed"].tolist() == ["size"]
    assert df.attrs["verdict"] == ("no candidate sustains 12 requests/s within 2 GPUs and the targets; the most any "
                                   "sustains is 8 requests/s (at most, by the roofline bound: H100-SXM TP 1, bf16 "
                                   "weights, bf16 KV); per candidate in sustainable_rate_per_s")


def test_plan_capacity_refuses_what_it_cannot_search(searched, monkeypatch):
    e = refused("request_rate", slo.plan_capacity, SPEC, slo.Workload(None, 10, 10, batch=4), TG, slo.Candidates())
    assert str(e) == ("request_rate: the SLO search sizes a deployment for a request rate (give request_rate_per_s "
                      "(requests per second))")
    e = refused("targets", slo.plan_capacity, SPEC, WL, slo.Targets(), slo.Candidates())
    assert str(e) == "targets: no latency target given (set at least one of TTFT, TPOT or end-to-end)"
    refused("engine_version", slo.plan_capacity, SPEC, WL, TG, slo.Candidates(server_version="0.0.1"))
    monkeypatch.setattr(slo.slo_space, "points", lambda *a: ([], []))
    e = refused("gpus", slo.plan_capacity, SPEC, WL, TG, slo.Candidates())
    assert str(e) == "gpus: no candidate GPU types (choose at least one GPU)"
    assert FakeSearch.made == []
    # a model by name is resolved from the bundled profiles
    monkeypatch.setattr(slo.slo_space, "points", lambda spec, *a: ([], [("X", f"{spec.name}: price")]))
    df = slo.plan_capacity("Llama-3.1-8B", WL, TG, slo.Candidates())
    assert df["reason"].tolist() == ["Llama-3.1-8B: price"] and df["failed"].tolist() == ["price"]


def test_plan_capacity_passes_the_axes_to_the_space(searched, monkeypatch):
    seen = []
    monkeypatch.setattr(slo.slo_space, "points", lambda *a: seen.append(a) or ([], [("X", "gone")]))
    slo.plan_capacity(SPEC, WL, TG, slo.Candidates(gpus=("L4",), tps=(2,), pps=(4,), weights=("fp8",),
                                                   kv_dtypes=("fp8",)))
    assert seen == [(SPEC, ("L4",), (2,), (4,), ("fp8",), ("fp8",))]


# ------------------------------------------------------------------ the table and the verdict


def test_the_table_ranks_confirmed_then_mean_value_then_rejected_and_within_each_by_cost():
    nan = math.nan
    rows = [  # name, status, $/h, requests/s per replica, sustainable rate, lower bound
        ("m1", "meets", 10, 1, nan, nan), ("m2", "meets", 8, 1, nan, nan), ("mv", "meets (mean-value)", 5, 1, nan, nan),
        ("r0", "rejected", 4, 1, nan, nan),
        ("r1", "rejected", 20, 3, nan, nan), ("r2", "rejected", 20, 4, nan, nan), ("r3", "rejected", nan, nan, 7, nan),
        ("r4", "rejected", nan, nan, 9, nan), ("r5", "rejected", nan, nan, nan, 2), ("r6", "rejected", nan, nan, nan, 1),
        ("r7", "rejected", nan, nan, nan, nan), ("odd", "screened", 1, 9, nan, nan)]
    recs = [{"gpu": n, "status": s, "usd_per_hour": u, "requests_per_s_per_replica": q, "sustainable_rate_per_s": r,
             "usd_per_hour_lower_bound": lb, "tp": 1, "_plan": object()} for n, s, u, q, r, lb in rows]
    wl, tg = slo.Workload(3, 10, 10), slo.Targets(tpot_s=0.1)
    df = slo._frame(recs, wl, tg)
    assert df["gpu"].tolist() == ["m2", "m1", "mv", "r0", "r2", "r1", "r4", "r3", "r6", "r5", "r7", "odd"]
    assert "_plan" not in df and not [c for c in df if c.startswith("_")] and "index" not in df
    assert df.index.tolist() == list(range(12))
    assert df.attrs["workload"] == {"request_rate_per_s": 3, "prompt_tokens": 10, "output_tokens": 10,
                                    "distribution": "fixed", "batch": None, "max_tokens": None}
    assert df.attrs["targets"] == {"ttft_s": None, "tpot_s": 0.1, "e2e_s": None, "percentile": 90}
    assert df["tp"].dtype == "Int64" and "replicas" not in df


def test_the_table_has_its_cost_columns_and_whole_numbers_even_when_nothing_was_costed():
    recs = [{"gpu": "a", "status": "rejected", "failed": "input", "tp": 1, "pp": 1, "replicas": 2, "gpus_total": 2,
             "batch": 8, "max_batch_memory": 9, "gpus_per_replica": 1, "sim_preemptions": 0, "sim_replicas": 2},
            {"gpu": "b", "status": "rejected", "failed": "price"}]
    df = slo._frame(recs, slo.Workload(3, 10, 10), slo.Targets(tpot_s=0.1))
    for c in ("usd_per_hour", "requests_per_s_per_replica", "usd_per_hour_lower_bound", "sustainable_rate_per_s"):
        assert df[c].isna().all() and df[c].dtype == float, c
    for c in ("tp", "pp", "replicas", "gpus_total", "batch", "max_batch_memory", "gpus_per_replica", "sim_preemptions",
              "sim_replicas"):
        assert df[c].dtype == "Int64" and df[c].iloc[0] == recs[0][c], c
    assert df["gpu"].tolist() == ["a", "b"]


def frame(*recs) -> pd.DataFrame:
    return pd.DataFrame([{"status": "rejected", "pp": 1, "failed": None, "sustainable_rate_per_s": np.nan,
                          "evaluated_by": "bound", **r} for r in recs])


def test_the_verdict_names_the_cheapest_plan():
    cand, wl = slo.Candidates(), slo.Workload(100, 10, 10)
    best = {"status": "meets", "gpus_total": 16, "gpu": "H200", "replicas": 1, "tp": 8, "pp": 2, "weights": "fp8",
            "kv_dtype": "fp8", "usd_per_hour": 12345.678}
    assert slo.verdict(frame(best, {"status": "rejected"}), wl, cand) == (
        "16 x H200 (1 replica(s) of TP 8 x PP 2, fp8 weights, fp8 KV) at $12,345.68/h (simulated)")
    mv = {**best, "status": "meets (mean-value)", "pp": 1, "gpus_total": 8}
    assert slo.verdict(frame({"status": "rejected"}, mv), wl, cand) == (
        "8 x H200 (1 replica(s) of TP 8, fp8 weights, fp8 KV) at $12,345.68/h (mean-value model only)")


def test_the_verdict_without_a_plan_says_the_most_any_candidate_sustains():
    cand, wl = slo.Candidates(max_gpus=4096), slo.Workload(100000, 10, 10)
    rows = [{"gpu": "L4", "tp": 1, "weights": "bf16", "kv_dtype": "bf16", "sustainable_rate_per_s": 3.0, "failed": "size"},
            {"gpu": "H100-SXM", "tp": 8, "pp": 2, "weights": "fp8", "kv_dtype": "fp8", "sustainable_rate_per_s": 1234.5,
             "failed": "size"},
            {"gpu": "A100", "tp": 1, "weights": "bf16", "kv_dtype": "bf16", "failed": "tpot"}]
    v = slo.verdict(frame(*rows), wl, cand)
    assert v == ("no candidate sustains 100000 requests/s within 4,096 GPUs and the targets; the most any sustains is "
                 "1.23e+03 requests/s (at most, by the roofline bound: H100-SXM TP 8 x PP 2, fp8 weights, fp8 KV); "
                 "per candidate in sustainable_rate_per_s")
    for by, basis in (("mean-value", "about, in the mean-value model"), ("simulation", "about, simulated"),
                      ("other", "about")):
        rows[1]["evaluated_by"], rows[1]["pp"] = by, 1
        assert f"is 1.23e+03 requests/s ({basis}: H100-SXM TP 8, fp8" in slo.verdict(frame(*rows), wl, cand)


def test_the_verdict_without_any_rate_counts_the_reasons():
    wl, cand = slo.Workload(1, 10, 10), slo.Candidates()
    rows = [{"failed": "tpot"}, {"failed": "input"}, {"failed": "tpot"}, {"failed": None}, {"failed": "tpot"},
            {"failed": "input"}]
    assert slo.verdict(frame(*rows), wl, cand) == "no candidate meets the targets (tpot: 3, input: 2, other: 1)"
    no_column = frame(*rows).drop(columns=["sustainable_rate_per_s"])
    assert slo.verdict(no_column, wl, cand) == "no candidate meets the targets (tpot: 3, input: 2, other: 1)"
