"""Published serving runs no fit has seen (planner/validate_external.py, profiles/validation/external-serving.csv)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import api, profiles
from planner import validate_external as ve

D = ve.rows()


def _row(**kw) -> pd.Series:
    base = {"id": "x", "engine": "vllm", "engine_version": "0.11.0", "model": "Llama-3.1-8B", "gpu": "H100-SXM", "tp": 1,
            "weights": "bf16", "kv_dtype": np.nan, "max_num_seqs": np.nan, "max_num_batched_tokens": np.nan,
            "gpu_memory_utilization": np.nan, "eager": np.nan, "async_scheduling": np.nan, "dataset": "random",
            "input_len": 1024, "output_len": 128, "input_low": np.nan, "input_high": np.nan, "output_low": np.nan,
            "output_high": np.nan, "mean_input_tokens": np.nan, "mean_output_tokens": np.nan, "num_prompts": 100,
            "max_concurrency": np.nan, "request_rate": "inf"}
    base.update(kw)
    return pd.Series(base)


def test_the_committed_runs_name_their_source_a_bundled_model_and_gpu_and_a_measurement():
    assert len(D) >= 200 and D["id"].is_unique
    assert D["source_url"].str.startswith("https://").all()
    assert set(D["engine"]) <= {"vllm", "sglang", "trtllm"}
    assert set(D["model"]) <= set(profiles.model_names()) and set(D["gpu"]) <= set(profiles.gpus())
    measured = D[["ttft_mean_ms", "ttft_median_ms", "tpot_mean_ms", "tpot_median_ms", "itl_mean_ms"]].notna().any(axis=1)
    assert measured.all()


def test_every_request_at_once_is_one_round_of_as_many_clients_as_prompts():
    # vllm bench serve without --max-concurrency at rate inf sends all 500 requests at t = 0; the totals printed
    # (1,000,000 input and 50,000 output tokens over 500 requests) give the lengths: 2,000 and 100
    t = ve.traffic(_row(num_prompts=500, mean_input_tokens=2000.0, mean_output_tokens=100.0))
    assert t["concurrency"] == 500 and t["rate"] is None
    assert (t["prompts"] == 2000).all() and (t["outputs"] == 100).all() and t["prompts"].size == 500


def test_a_closed_loop_a_poisson_rate_and_inferencex_s_uniform_lengths():
    t = ve.traffic(_row(max_concurrency=8, num_prompts=80, input_low=819, input_high=1024, output_low=819,
                        output_high=1024))
    assert t["concurrency"] == 8 and t["prompts"].size == 80
    assert t["prompts"].min() >= 819 and t["prompts"].max() <= 1024 and t["prompts"].std() > 0
    p = ve.traffic(_row(request_rate="4", num_prompts=300, dataset="sharegpt", mean_input_tokens=317.6,
                        mean_output_tokens=201.4))
    assert p["rate"] == 4.0 and p["concurrency"] is None
    # ShareGPT's lengths: exponential at the run's means (draw_lengths clips to [1, 8 x mean])
    assert 250 < p["prompts"].mean() < 390 and p["prompts"].max() <= 8 * 318
    assert ve.traffic(_row(request_rate="4", max_concurrency=16)) is None  # a rate under a cap: not simulated


def test_the_row_s_flags_become_the_deployment_and_the_rest_are_the_engine_s_defaults():
    d = ve.deployment(_row(max_num_seqs=64, max_num_batched_tokens=4096, gpu_memory_utilization=0.85, eager="on",
                           kv_dtype="fp8", weights="fp8"))
    assert (d.max_num_seqs, d.max_num_batched_tokens, d.gpu_memory_utilization) == (64, 4096, 0.85)
    assert d.cuda_graph_sizes == () and d.kv_dtype == "fp8" and d.weights == "fp8" and d.server_version == "0.11.0"
    plain = ve.deployment(_row())
    # no KV dtype stated: the engine's own ("auto", resolved when the plan is built: the model's bf16 here)
    assert plain.max_num_seqs is None and plain.cuda_graph_sizes is None and plain.kv_dtype == "auto"
    assert api.build_plan(_row().model, "H100-SXM", plain).memory.dep.kv_dtype == "bf16"
    # no weights stated: the checkpoint's own (DeepSeek-R1's block fp8 quantization_config)
    assert ve.deployment(_row(model="DeepSeek-R1", weights=np.nan, tp=8)).weights == "fp8-block"


def test_errors_score_the_first_statistic_a_row_publishes_against_the_same_statistic():
    pred = pd.DataFrame([{"id": "a", "engine": "vllm", "ttft_mean_ms": np.nan, "ttft_median_ms": 100.0,
                          "tpot_mean_ms": 20.0, "tpot_median_ms": 19.0, "itl_mean_ms": 18.0,
                          "ttft_mean_s": 0.5, "ttft_median_s": 0.12, "tpot_mean_s": 0.015, "tpot_median_s": 0.3,
                          "itl_mean_s": 0.3}])
    e = ve.errors(pred).set_index("metric")
    # TTFT: only the median is published, so the simulated median: (120 - 100) / 100 = +20 %
    assert e.loc["ttft", "statistic"] == "median" and e.loc["ttft", "error_pct"] == pytest.approx(20.0)
    # TPOT: the mean is published first: (15 - 20) / 20 = -25 %
    assert e.loc["tpot", "statistic"] == "mean" and e.loc["tpot", "error_pct"] == pytest.approx(-25.0)
    band = profiles.latency_bands("vllm")["tpot"]
    assert bool(e.loc["tpot", "in_band"]) == (band["low_ratio"] * 15.0 <= 20.0 <= band["high_ratio"] * 15.0)


def test_published_runs_are_predicted_and_a_request_beyond_the_pool_says_why():
    one = D[D["id"].isin(["sglang-deepseek-r1-b200-tp8-random-1024x1024-c1-1",
                          "vllm-qwen3-32b-h100-sxm-tp1-random-32000x100-cburst-1"])]
    p = ve.predict(one).set_index("id")
    ok = p.loc["sglang-deepseek-r1-b200-tp8-random-1024x1024-c1-1"]
    assert ok["why"] == "" and np.isfinite(ok["ttft_mean_s"]) and 0 < ok["tpot_mean_s"] < 1
    assert bool(ok["tables"])  # B200 has AIC's tables, MLA and fp8_block MoE included
    # Qwen3-32B bf16 on one H100 under vLLM 0.11.0: a 4.53 GiB pool, 32,000 + 77 tokens need 7.83 GiB
    assert p.loc["vllm-qwen3-32b-h100-sxm-tp1-random-32000x100-cburst-1", "why"].startswith("kv_capacity")


def test_in_flight_is_little_s_law_on_the_printed_figures():
    # 1,000 requests of 201 output tokens at 1,000 output tokens/s last 1,000 x 201 / 1,000 = 201 s; each decodes
    # for 50 ms x 200 = 10 s, so 1,000 x 10 / 201 = 49.75 decode at once; the simulation's 25 gives a ratio of 1.99.
    # A closed loop (max_concurrency set) is left out: its clients, not the engine, decide how many are in flight
    pred = pd.DataFrame([
        {"id": "a", "engine": "vllm", "model": "m", "gpu": "g", "dataset": "sharegpt", "num_prompts": 1000,
         "max_concurrency": np.nan, "request_rate": "inf", "mean_output_tokens": 201.0, "output_len": np.nan,
         "output_tok_s": 1000.0, "tpot_mean_ms": 50.0, "decoding_in_flight": 25.0},
        {"id": "b", "engine": "vllm", "model": "m", "gpu": "g", "dataset": "random", "num_prompts": 100,
         "max_concurrency": 8.0, "request_rate": "inf", "mean_output_tokens": 100.0, "output_len": 100,
         "output_tok_s": 500.0, "tpot_mean_ms": 10.0, "decoding_in_flight": 8.0}])
    f = ve.in_flight(pred)
    assert list(f["id"]) == ["a"]
    assert f.loc[0, "measured_in_flight"] == pytest.approx(1000 * 0.05 * 200 / 201)
    assert f.loc[0, "ratio"] == pytest.approx(1000 * 0.05 * 200 / 201 / 25)


def test_predict_reports_the_simulated_requests_in_flight():
    # every request at once, all admitted together: the time-averaged number decoding is between 0 and the requests
    one = D[D["id"] == "vllm-gpt-oss-20b-h100-sxm-tp1-random-2000x100-cburst-1"]
    p = ve.predict(one).iloc[0]
    assert 0 < p["decoding_in_flight"] <= p["num_prompts"]
