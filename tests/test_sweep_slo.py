"""The vectorised sweep, the Pareto frontier, the SLO search, CSV export and the serving CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kv_known import LLAMA31_8B

from planner import api, csvsafe, profiles, slo
from planner.cli import main
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.spec import ModelSpec
from planner.sweep import pareto_frontier, pareto_mask, sweep

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "Llama-3.1-8B")
GPUS = [g for g in ("H100-SXM", "L4") if g in profiles.gpus()]
pytestmark = pytest.mark.skipif(len(GPUS) < 2, reason="needs the bundled H100-SXM and L4 profiles")


def test_sweep_rows_are_the_grid_and_equal_single_plans():
    df = sweep(SPEC, GPUS, [1, 8, 64], [512, 4096], [128, 1024], weights=["bf16", "fp8"], kv_dtypes=["bf16", "fp8"])
    assert len(df) == 2 * 2 * 2 * 3 * 2 * 2
    assert set(df["provenance"].unique()) <= {"datasheet", "calibrated"}
    row = df[(df.gpu == "L4") & (df.weights == "fp8") & (df.kv_dtype == "bf16") & (df.batch == 8)
             & (df.prompt_tokens == 4096) & (df.output_tokens == 1024)].iloc[0]
    one = api.plan(SPEC, "L4", 8, 4096, 1024, weights="fp8", kv_dtype="bf16", simulate=False)
    # a sweep is the mean-value model: its latency, throughput and cost columns are the unsimulated plan's
    for k, kp in (("ttft_lower_bound_s", "ttft_lower_bound_s"), ("tpot_mean_value_s", "tpot_mean_value_s"),
                  ("memory_total_bytes_per_gpu",) * 2, ("cost_usd_per_1m_output_tokens",) * 2,
                  ("requests_per_s",) * 2):
        assert row[k] == pytest.approx(one[kp], rel=1e-12)
    assert bool(row["fits"]) == one["fits"]
    assert row["decode_bound"] == one["bound"]["decode"]


def test_impossible_deployments_are_listed_not_rows():
    df = sweep(SPEC, GPUS[0], [1], [128], [16], tps=[1, 3])
    assert set(df["tp"]) == {1}
    assert "do not split over 3" in df.attrs["skipped"][0]["reason"]
    with pytest.raises(PlannerInputError, match="no deployment"):
        sweep(SPEC, GPUS[0], [1], [128], [16], tps=[3])
    with pytest.raises(PlannerInputError, match="batch"):
        sweep(SPEC, GPUS[0], [0], [128], [16])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_pareto_mask_matches_brute_force(points):
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    dominated = [any(x[j] >= x[i] and y[j] >= y[i] and (x[j] > x[i] or y[j] > y[i]) for j in range(len(x)))
                 for i in range(len(x))]
    mask = pareto_mask(x, y)
    for i in range(len(x)):
        if dominated[i]:
            assert not mask[i]
    # every undominated value pair is represented once
    assert {(x[i], y[i]) for i in range(len(x)) if mask[i]} == {(x[i], y[i]) for i in range(len(x)) if not dominated[i]}


def test_frontier_trades_latency_for_throughput():
    df = sweep(SPEC, GPUS, 2 ** np.arange(0, 10), [1024], [256])
    f = pareto_frontier(df, by=["gpu"])
    for _, g in f.groupby("gpu", observed=True):
        g = g.sort_values("tokens_per_s_per_user")
        assert np.all(np.diff(g["output_tokens_per_s_per_gpu"].to_numpy()) <= 0)
        assert g["fits"].all()


def test_csv_cells_that_start_a_formula_are_neutralised(tmp_path):
    df = pd.DataFrame({"model": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "ok"], "headroom": [-1.5, 2, 3, 4, 5]})
    p = tmp_path / "x.csv"
    csvsafe.to_csv(df, p)
    back = pd.read_csv(p)
    assert list(back["model"]) == ["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "ok"]
    assert back["headroom"].iloc[0] == -1.5  # numbers stay numbers


def test_slo_returns_only_plans_that_meet_the_targets_cheapest_first():
    wl = slo.Workload(request_rate_per_s=12, prompt_tokens=1024, output_tokens=256, distribution="exponential")
    tg = slo.Targets(ttft_s=0.5, tpot_s=0.05, percentile=90)
    cand = slo.Candidates(gpus=tuple(GPUS), tps=(1, 2), weights=("bf16", "fp8"), kv_dtypes=("bf16",),
                          simulate_top=3, sim_requests=400)
    df = slo.plan_capacity(SPEC, wl, tg, cand)
    assert len(df) == len(GPUS) * 2 * 2
    ok = df[df.status == "meets"]
    assert len(ok) >= 1
    assert (ok["sim_ttft_p90_s"] <= 0.5).all() and (ok["sim_tpot_p90_s"] <= 0.05).all()
    assert (ok["mean_tpot_s"] <= 0.05).all()
    passing = df[df.status.str.startswith("meets")]
    assert list(passing["usd_per_hour"]) == sorted(passing["usd_per_hour"])
    assert (passing["usd_per_hour"] == passing["gpus_total"] * passing["price_usd_per_gpu_hour"]).all()
    # enough replicas for the rate, in the mean-value model
    assert (passing["replicas"] * passing["requests_per_s_per_replica"] >= 12).all()
    rejected = df[df.status == "rejected"]
    assert rejected["reason"].str.len().gt(0).all()


def test_slo_rejects_with_the_reason_that_binds():
    wl = slo.Workload(request_rate_per_s=1, prompt_tokens=1024, output_tokens=128)
    df = slo.plan_capacity(SPEC, wl, slo.Targets(tpot_s=1e-4), slo.Candidates(gpus=tuple(GPUS)))
    assert (df.status == "rejected").all()
    assert df["failed"].eq("tpot").all()
    assert df["reason"].str.contains("more replicas cannot help").all()
    huge = SPEC.with_kv_heads(32)  # MHA: 4x the KV cache
    df = slo.plan_capacity(huge, slo.Workload(1, 200_000, 128), slo.Targets(ttft_s=1000),
                           slo.Candidates(gpus=("L4",), tps=(1,), weights=("bf16",), kv_dtypes=("bf16",)))
    assert df.loc[0, "failed"] == "memory" and "GiB" in df.loc[0, "reason"]


@pytest.mark.parametrize("kw,field", [({"request_rate_per_s": -1}, "request_rate"), ({"prompt_tokens": 0}, "prompt"),
                                      ({"distribution": "zipf"}, "distribution")])
def test_bad_workloads_name_the_field(kw, field):
    args = {"request_rate_per_s": 1.0, "prompt_tokens": 10, "output_tokens": 10, **kw}
    with pytest.raises(PlannerInputError) as e:
        slo.Workload(**args)
    assert e.value.field == field


def test_cli_plan_json_keys_and_csv(tmp_path, capsys):
    out = tmp_path / "plan.csv"
    assert main(["plan", "Llama-3.1-8B" if "Llama-3.1-8B" in profiles.model_names() else "tests/none", "--gpu", GPUS[0],
                 "--batch", "8", "--prompt", "512", "--output", "128", "--json", "--csv", str(out)]) in (0, 2)
    cap = capsys.readouterr()
    if "Llama-3.1-8B" not in profiles.model_names():
        assert "error:" in cap.err
        return
    d = json.loads(cap.out)
    for k in ("fits", "ttft_s", "tpot_s", "e2e_latency_s", "output_tokens_per_s", "requests_per_s",
              "cost_usd_per_1m_output_tokens", "memory_total_bytes_per_gpu", "bound"):
        assert k in d
    assert set(d["bound"]) == {"prefill", "decode"} and d["bound"]["decode"] in ("compute", "memory")
    assert pd.read_csv(out).loc[0, "tpot_s"] == pytest.approx(d["tpot_s"])


def test_the_sweep_table_prints_and_each_engine_sweeps_its_own_plan(capsys):
    # the plain-text table (no --json / --csv) names the mean-value columns it shows; --engine picks the serving
    # engine as plan's does: each row is that engine's plan (SGLang's TPOT is not vLLM's: no per-pass or eager
    # cost fitted, its own CUDA-graph sizes)
    from planner.request import build
    assert main(["sweep", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", "8", "--prompt", "1024", "--output", "256",
                 "--engine", "sglang"]) == 0
    out = capsys.readouterr().out
    assert "ttft_lower_bound_s" in out and "tpot_mean_value_s" in out
    tpot = {}
    for srv in ("vllm", "sglang"):
        row = sweep("Llama-3.1-8B", "H100-SXM", 8, 1024, 256, server=srv).iloc[0]
        p = api.plan_request(build("Llama-3.1-8B", "H100-SXM", 8, 1024, 256, simulate=False, server=srv)).as_dict()
        assert row["tpot_mean_value_s"] == pytest.approx(p["tpot_mean_value_s"], rel=1e-12)
        tpot[srv] = row["tpot_mean_value_s"]
    assert tpot["vllm"] != tpot["sglang"]


def test_cli_bad_input_exits_2(capsys):
    assert main(["sweep", "Llama-3.1-8B", "--gpu", "NoSuchGPU", "--batch", "1", "--prompt", "1", "--output", "1"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["slo", "Llama-3.1-8B", "--gpu", GPUS[0], "--rate", "1", "--prompt", "10", "--output", "10"]) == 2
    assert "target" in capsys.readouterr().err


def test_cli_kv_heads_what_if(tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(LLAMA31_8B))
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    gqa = json.loads(capsys.readouterr().out)
    assert main(["inspect", str(cfg), "--kv-heads", "1", "--json"]) == 0
    mqa = json.loads(capsys.readouterr().out)
    assert gqa["kv_bytes_per_token"] == 8 * mqa["kv_bytes_per_token"]  # 8 KV heads -> 1
    assert any("uptraining" in a for a in mqa["assumptions"])
    assert main(["inspect", str(cfg), "--kv-heads", "5"]) == 2
    assert "does not divide 32" in capsys.readouterr().err


def test_the_plan_headline_is_the_simulated_benchmark_and_agrees_at_concurrency_1():
    one = api.plan(SPEC, GPUS[0], 1, 1024, 128)
    # one client: nothing queues, so the simulated TTFT is the lone prefill plus the client-side
    # per-request cost the simulation adds (HTTP, tokenization), and TPOT the batch-1 decode step
    extra = api.build_plan(SPEC, GPUS[0], Deployment(weights=api.default_weights(SPEC))).scheduler.request_overhead_s
    assert one["ttft_p50_s"] - extra == pytest.approx(one["ttft_lower_bound_s"], rel=0.02)
    assert one["tpot_p50_s"] == pytest.approx(one["tpot_mean_value_s"], rel=0.05)
    assert one["latency_source"].startswith("simulated: 1 client in a closed loop")
    many = api.plan(SPEC, GPUS[0], 32, 1024, 128)
    # 32 in flight: a new prompt waits for the passes in progress and shares them with other prompts
    assert many["ttft_s"] >= many["ttft_lower_bound_s"]
    assert many["ttft_p90_s"] >= many["ttft_p50_s"]
    assert many["sim_requests"] == 20 * 32  # every request of 20 rounds measured
    flat = api.plan(SPEC, GPUS[0], 32, 1024, 128, simulate=False)
    assert "ttft_p50_s" not in flat and flat["ttft_s"] == flat["ttft_lower_bound_s"]
    assert flat["latency_source"].startswith("mean-value")


def test_sweep_takes_a_single_value_on_any_axis():
    df = sweep(SPEC, GPUS[0], 8, 1024, [128, 256])
    assert len(df) == 2 and set(df["batch"]) == {8} and set(df["prompt_tokens"]) == {1024}
