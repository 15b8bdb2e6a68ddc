"""The SLO search over its default space: what it considers, that its first tier (the roofline bound)
never rejects or undercuts what the full evaluation would accept, that it finds what an exhaustive
search finds, and what it says when no deployment can sustain the rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import profiles, slo, slo_search, slo_space
from planner.cli import main

NEEDED = ("Llama-3.1-8B", "Llama-3.1-70B", "Qwen3-30B-A3B", "DeepSeek-V3")
pytestmark = pytest.mark.skipif(not set(NEEDED) <= set(profiles.model_names()) or "H100-SXM" not in profiles.gpus(),
                                reason="needs the bundled models and GPU profiles")
WL = slo.Workload(request_rate_per_s=20, prompt_tokens=1024, output_tokens=256)
TG = slo.Targets(ttft_s=1.0, tpot_s=0.05)
LATENCY = [c for c in ("mean_ttft_s", "mean_e2e_s", "sim_ttft_p90_s", "sim_e2e_p90_s")]


def rows(df, **kw):
    m = np.ones(len(df), dtype=bool)
    for k, v in kw.items():
        m &= (df[k] == v).to_numpy()
    return df[m]


def test_the_default_space_is_every_gpu_tp_format_and_kv_dtype():
    spec = profiles.load_model("Llama-3.1-70B")
    pts, whole = slo_space.points(spec, (), (), (), (), ())
    priced = {g for g, s in profiles.gpus().items() if s.price_usd_per_hour}
    assert {p.gpu for p in pts} == priced
    assert {g for g, _ in whole} == set(profiles.gpus()) - priced
    h100 = {(p.tp, p.weights, p.kv_dtype) for p in pts if p.gpu == "H100-SXM"}
    assert {(t, w, k) for t in (1, 2, 4, 8) for w in ("bf16", "fp8", "fp8-block") for k in ("bf16", "fp8")} == h100
    a100 = {(p.weights, p.kv_dtype) for p in pts if p.gpu == "A100-SXM-80GB"}
    assert a100 == {("bf16", "bf16")}  # no fp8 tensor cores: bf16 only (the checkpoint is bf16)
    # T4 (8 x 14.75 GiB) cannot hold 141 GB of bf16 weights in one node: pipeline stages at TP 8
    assert {(p.tp, p.pp) for p in pts if p.gpu == "T4" and p.pp > 1} == {(8, 2), (8, 4)}
    ds = profiles.load_model("DeepSeek-V3")
    assert "fp8-block" in {p.weights for p in slo_space.points(ds, ("A100-SXM-80GB",), (), (), (), ())[0]}


def test_a_70b_on_h100_gets_tp_and_fp8_ranked_above_tp1_bf16():
    df = slo.plan_capacity("Llama-3.1-70B", WL, TG, slo.Candidates(gpus=("H100-SXM",)))
    assert len(rows(df, tp=8, weights="fp8")) == 2 and len(rows(df, tp=1, weights="bf16")) == 2
    best = df.iloc[0]
    assert best["status"] == "meets" and best["weights"] in ("fp8", "fp8-block")
    tp1 = rows(df, tp=1, weights="bf16", kv_dtype="bf16")
    assert tp1.index[0] > 0 and tp1["status"].iloc[0] == "rejected" and tp1["failed"].iloc[0] == "memory"
    # a TPOT only TP 8 reaches: the search finds it, fp8. 11.5 ms lies between TP 8 and TP 4: the published
    # vLLM runs of Llama-3.1-70B fp8 on H100 (profiles/validation/e2e-vllm.csv) measured 9.1-11.4 ms at 4-16
    # clients on TP 8 and 11.8-13.2 ms on TP 4 (the plan over-predicts TP 8 at few clients by 5-15 %:
    # docs/validation.md); at 10 ms (the slowest of 8 ranks waited out at every all-reduce, planner/timing.py)
    # no deployment of this traffic meets it
    tight = slo.plan_capacity("Llama-3.1-70B", WL, slo.Targets(ttft_s=1.0, tpot_s=0.0115),
                              slo.Candidates(gpus=("H100-SXM",)))
    assert tight.iloc[0]["status"] == "meets" and int(tight.iloc[0]["tp"]) == 8
    assert tight.iloc[0]["weights"] in ("fp8", "fp8-block")


def test_the_whole_default_search_answers_for_a_70b():
    df = slo.plan_capacity("Llama-3.1-70B", WL, TG, slo.Candidates())
    s = df.attrs["search"]
    assert s["candidates"] == len(df) and s["simulated"] >= 1 and s["built"] < s["candidates"] / 2
    best = df.iloc[0]
    assert best["status"] == "meets" and best["sim_ttft_p90_s"] <= 1.0 and best["sim_tpot_p90_s"] <= 0.05
    assert best["server"] == "vllm" and best["server_version"]
    # nothing dearer than the answer was simulated ahead of it; nothing cheaper left unbuilt
    unbuilt = df[df["failed"] == "cost"]
    assert (unbuilt["usd_per_hour_lower_bound"] >= best["usd_per_hour"]).all()
    assert (df[df["status"] == "meets (mean-value)"]["usd_per_hour"] >= best["usd_per_hour"]).all()


def test_deepseek_v3_gets_a_plan():
    df = slo.plan_capacity("DeepSeek-V3", slo.Workload(5, 1024, 256), slo.Targets(ttft_s=2.0, tpot_s=0.1),
                           slo.Candidates())
    assert df.iloc[0]["status"] == "meets"
    h200 = slo.plan_capacity("DeepSeek-V3", slo.Workload(5, 1024, 256), slo.Targets(ttft_s=2.0, tpot_s=0.1),
                             slo.Candidates(gpus=("H200",)))
    best = h200.iloc[0]
    assert best["status"] == "meets" and int(best["tp"]) == 8 and best["weights"] in ("fp8", "fp8-block")
    # H100 (8 x 79 GiB) cannot hold 671B of fp8 weights: two pipeline stages of TP 8 are tried
    h100 = slo.plan_capacity("DeepSeek-V3", slo.Workload(5, 1024, 256), slo.Targets(ttft_s=2.0, tpot_s=0.1),
                             slo.Candidates(gpus=("H100-SXM",), weights=("fp8-block",)))
    assert 2 in set(h100["pp"]) and "one node" in " ".join(h100["note"].astype(str))


def test_flags_narrow_the_space():
    cand = slo.Candidates(gpus=("H100-SXM",), tps=(2,), weights=("fp8",), kv_dtypes=("bf16",))
    df = slo.plan_capacity("Llama-3.1-70B", WL, TG, cand)
    assert df[["gpu", "tp", "pp", "weights", "kv_dtype"]].astype(str).values.tolist() == [["H100-SXM", "2", "1", "fp8",
                                                                                           "bf16"]]
    # a TP that does not split the heads, named by the caller, is a row with the reason
    bad = slo.plan_capacity("Llama-3.1-70B", WL, TG, slo.Candidates(gpus=("H100-SXM",), tps=(3,), weights=("fp8",)))
    assert set(bad["failed"]) == {"input"} and bad["reason"].str.contains("do not split").all()
    unpriced = [g for g, s in profiles.gpus().items() if not s.price_usd_per_hour][:1]
    if unpriced:
        row = slo.plan_capacity("Llama-3.1-8B", WL, TG, slo.Candidates(gpus=tuple(unpriced))).iloc[0]
        assert row["failed"] == "price" and "no price" in row["reason"]


def test_an_unsustainable_rate_shows_no_finite_ttft_and_names_the_rate():
    wl = slo.Workload(request_rate_per_s=1e5, prompt_tokens=1024, output_tokens=256)
    df = slo.plan_capacity("Llama-3.1-8B", wl, TG, slo.Candidates(gpus=("H100-SXM", "L4"), max_gpus=64))
    assert (df["status"] == "rejected").all()
    size = df[df["failed"] == "size"]
    assert len(size) and (size["sustainable_rate_per_s"] > 0).all() and size["reason"].str.contains("sustain").all()
    for c in [c for c in LATENCY if c in df]:
        assert not np.isfinite(size[c].astype(float)).any(), c
    v = df.attrs["verdict"]
    most = df["sustainable_rate_per_s"].max()
    assert "no candidate sustains 100000 requests/s" in v and f"{most:.3g}" in v


def test_an_unstable_simulation_shows_no_finite_ttft():
    """A replica count the queue outruns: the simulation says unstable, every TTFT column is infinite."""
    from planner import slo_bound

    spec = profiles.load_model("Llama-3.1-8B")
    cand = slo.Candidates(gpus=("H100-SXM",), tps=(1,), weights=("bf16",), kv_dtypes=("bf16",), sim_requests=300)
    row = slo._row(slo_space.Point("H100-SXM", 1, 1, "bf16", "bf16"), cand, "x")
    row = slo_search.screen(spec, row, WL, TG, cand)
    assert row["status"] == "screened"
    wl = slo.Workload(request_rate_per_s=20 * row["replicas"] * row["requests_per_s_per_replica"], prompt_tokens=1024,
                      output_tokens=256)
    row["replicas"] = 1  # a twentieth of what the rate needs
    assert not slo_search.simulate_row(row, wl, TG, cand, slo_search.lengths(wl, cand))
    assert row["failed"] == "unstable" and row["sim_stable"] is False
    assert row["sustainable_rate_per_s"] < wl.request_rate_per_s and "serve about" in row["reason"]
    assert all(not math.isfinite(row[c]) for c in LATENCY)
    assert slo_bound.screen_optimism() < 1


GRID_MODELS = ("Llama-3.1-8B", "Qwen3-30B-A3B")
GRID_GPUS = ("H100-SXM", "L40S", "L4", "MI300X")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(model=st.sampled_from(GRID_MODELS), gpu=st.sampled_from(GRID_GPUS), tp=st.sampled_from((1, 2)),
       fmt=st.sampled_from(("bf16", "fp8")), kvd=st.sampled_from(("bf16", "fp8")),
       prompt=st.integers(16, 16_000), output=st.integers(2, 2_000), rate=st.floats(0.1, 200),
       ttft=st.floats(0.01, 5), tpot=st.floats(0.003, 0.2), use_e2e=st.booleans())
def test_the_bound_never_rejects_or_undercuts_what_the_full_evaluation_accepts(model, gpu, tp, fmt, kvd, prompt,
                                                                               output, rate, ttft, tpot, use_e2e):
    spec = profiles.load_model(model)
    wl = slo.Workload(rate, prompt, output)
    tg = slo.Targets(ttft_s=ttft, tpot_s=tpot, e2e_s=(ttft + output * tpot) if use_e2e else None)
    cand = slo.Candidates(gpus=(gpu,), tps=(tp,), weights=(fmt,), kv_dtypes=(kvd,), max_gpus=1 << 20)
    pt = slo_space.Point(profiles.gpu(gpu).id, tp, 1, fmt, kvd)
    bound = slo._bound(spec, slo._row(pt, cand, "x"), wl, tg, cand, {})
    full = slo_search.screen(spec, slo._row(pt, cand, "x"), wl, tg, cand)
    if full["status"] == "screened":  # the full evaluation accepts it: so must the bound, at no higher cost
        assert bound["status"] == "screened", bound["reason"]
        assert bound["usd_per_hour_lower_bound"] <= full["usd_per_hour"] * (1 + 1e-9)
        assert bound["requests_per_s_upper_bound"] >= full["requests_per_s_per_replica"] * (1 - 1e-9)


def test_the_search_finds_what_an_exhaustive_one_finds():
    """Every candidate fully evaluated: any plan cheaper (mean-value) than the answer was simulated, and missed."""
    spec = profiles.load_model("Llama-3.1-8B")
    wl, tg = slo.Workload(30, 2048, 256), slo.Targets(ttft_s=0.5, tpot_s=0.03)
    cand = slo.Candidates(gpus=GRID_GPUS, simulate_top=2, sim_requests=400)
    df = slo.plan_capacity(spec, wl, tg, cand)
    bar = df[df["status"] == "meets"]["usd_per_hour"].max()
    pts, _ = slo_space.points(spec, cand.gpus, (), (), (), ())
    for pt in pts:
        full = slo_search.screen(spec, slo._row(pt, cand, "x"), wl, tg, cand)
        if full["status"] != "screened" or full["usd_per_hour"] >= bar:
            continue
        got = rows(df, gpu=pt.gpu, tp=pt.tp, weights=pt.weights, kv_dtype=pt.kv_dtype).iloc[0]
        assert got["evaluated_by"] == "simulation", (pt, full["usd_per_hour"], bar)


def test_cli_searches_every_gpu_by_default_and_passes_the_engine(capsys):
    args = ["slo", "Llama-3.1-8B", "--rate", "5", "--prompt", "1024", "--output", "256", "--ttft", "0.5",
            "--tpot", "0.05"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "answer: " in out and "candidates:" in out
    assert main([*args, "--gpu", "H100-SXM", "--tp", "1", "--engine", "sglang", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert {r["server"] for r in recs} == {"sglang"} and {r["tp"] for r in recs} == {1}
    assert {r["kv_dtype"] for r in recs} == {"bf16", "fp8"}
    assert main([*args, "--gpu", "H100-SXM", "--engine-version", "0.10.2", "--json"]) == 0
    assert {r["server_version"] for r in json.loads(capsys.readouterr().out)} == {"0.10.2"}
    assert main([*args, "--engine-version", "0.0.1"]) == 2
    assert "engine_version" in capsys.readouterr().err
