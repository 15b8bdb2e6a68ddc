"""PlanRequest and PlanResult: one request, one result (issue 12 item 1)."""

import dataclasses
import math

import pandas as pd
import pytest

from planner import api, csvsafe
from planner.cli import build_parser
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.request import PlanRequest, Targets, Technique, Workload, build

MODEL, GPU = "Llama-3.1-8B", "H100-SXM"


def _req(**kw) -> PlanRequest:
    base = {"model": MODEL, "gpu": GPU, "workload": Workload(None, 1000, 200, batch=8)}
    return PlanRequest(**{**base, **kw})


def test_request_is_frozen_and_hashable_and_equal_by_value():
    a, b = _req(), _req()
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert len({a, b, _req(gpus=4)}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.gpu = "A100-SXM-80GB"
    assert _req(deployment=Deployment(kv_dtype="fp8")).key != a.key


@pytest.mark.parametrize("kw,field", [
    ({"workload": Workload(5.0, 1000, 200)}, "batch"),           # an open-loop workload is not a plan
    ({"gpus": 0}, "gpus"),
    ({"gpus": 3, "deployment": Deployment(tp=4)}, "gpus"),      # 3 GPUs cannot hold TP=4
    ({"model": ""}, "model"),
    ({"gpu": None}, "gpu"),
    ({"simulate": "yes"}, "simulate"),
    ({"techniques": (Technique("speculative_decoding"),)}, "techniques"),  # planned, not modelled: refused
])
def test_an_impossible_request_names_its_field(kw, field):
    with pytest.raises(PlannerInputError) as e:
        _req(**kw)
    assert e.value.field == field


def test_workload_needs_a_rate_or_a_batch():
    with pytest.raises(PlannerInputError) as e:
        Workload(None, 10, 10)
    assert e.value.field == "workload"
    with pytest.raises(PlannerInputError) as e:
        Workload(None, 10, 10, batch=0)
    assert e.value.field == "batch"


@pytest.mark.parametrize("req", [
    _req(),
    _req(gpus=16, simulate=False, deployment=Deployment(weights="fp8", kv_dtype="fp8", tp=2, pp=2,
                                                       gpu_memory_utilization=0.85, server="sglang",
                                                       server_version="0.4.6", max_num_seqs=64,
                                                       cuda_graph_sizes=(1, 2, 4), enable_mixed_chunk=True)),
    _req(workload=Workload(2.5, 300, 40, distribution="exponential", batch=3), slo=Targets(ttft_s=0.25, tpot_s=0.02,
                                                                                         percentile=99)),
])
def test_params_round_trip(req):
    params = req.to_params()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert PlanRequest.from_params(params) == req
    assert PlanRequest.from_params({**params, "utm_source": "x"}) == req  # unknown keys (a URL's) are ignored


def test_params_are_short_for_a_default_request():
    # the dashboard's long-standing URL keys, and nothing at its default beyond them; the KV dtype defaults to
    # "auto" (the engine's own cache, 2026-12-03), and a link written with kv=bf16 before still reads
    assert _req().to_params() == {"model": MODEL, "gpu": GPU, "batch": "8", "prompt": "1000", "output": "200",
                                  "weights": "bf16", "kv": "auto", "engine": "paged", "tp": "1"}
    old = {**_req().to_params(), "kv": "bf16"}
    assert PlanRequest.from_params(old).deployment.kv_dtype == "bf16"


@pytest.mark.parametrize("name,raw", [("batch", "0"), ("batch", "x"), ("tp", "-2"), ("simulate", "maybe"),
                                      ("gpu_memory_utilization", "nan"), ("kv", "fp7")])
def test_a_bad_param_names_itself(name, raw):
    params = {**_req().to_params(), name: raw}
    with pytest.raises(PlannerInputError) as e:
        PlanRequest.from_params(params)
    assert e.value.field in (name, "kv_dtype", "gpu_memory_utilization")


def test_cli_arguments_build_the_same_request():
    req = _req(gpus=4, simulate=False, deployment=Deployment(kv_dtype="fp8", tp=2))
    a = build_parser().parse_args(["plan", *req.to_argv()])
    from planner.cli_serving import request_of
    assert request_of(a) == req


@pytest.mark.parametrize("dep,flag", [
    (Deployment(server="sglang", server_version="0.4.7"), ["--engine", "sglang", "--engine-version", "0.4.7"]),
    (Deployment(server="trtllm", tp=2), ["--engine", "trtllm"]),
    (Deployment(engine="transformers"), ["--engine", "transformers"]),
    (Deployment(), ["--engine", "vllm"]),
])
def test_the_serving_engine_and_its_release_go_through_the_cli(dep, flag):
    # plan's --engine names the serving engine, as slo's and command's do: to_argv writes it, the parser reads
    # it back into the same deployment (a paged KV layout served by that engine, or transformers)
    req = _req(deployment=dep)
    argv = req.to_argv()
    assert " ".join(flag) in " ".join(argv)
    from planner.cli_serving import request_of
    assert request_of(build_parser().parse_args(["plan", *argv])) == req


def test_a_release_newer_than_the_engine_table_says_whose_rules_it_ran_with():
    # the table applies its newest release's rules to a newer one (EngineTable.resolve); the headline says so
    from planner import profiles
    newest = profiles.engine_table("vllm").newest
    src = api.plan_request(_req(deployment=Deployment(server_version="99.1"))).source("ttft_s")
    assert f"vLLM 99.1 (run with {newest}'s rules" in src
    known = api.plan_request(_req(deployment=Deployment(server_version="0.18.0"))).source("ttft_s")
    assert "vLLM 0.18.0 scheduler" in known and "run with" not in known


@pytest.mark.parametrize("on", [True, False])
def test_async_scheduling_goes_through_the_cli_and_the_link(on):
    # plan --async-scheduling on|off (to_argv writes 1 / 0, which the flag reads too) and the link's async_scheduling=
    req = _req(deployment=Deployment(server_version="0.12.0", async_scheduling=on))
    argv = req.to_argv()
    assert argv[argv.index("--async-scheduling") + 1] == ("1" if on else "0")
    from planner.cli_serving import request_of
    assert request_of(build_parser().parse_args(["plan", *argv])) == req
    from planner import requestparams
    assert requestparams.from_params(requestparams.to_params(req)) == req
    assert "--async-scheduling" not in _req().to_argv()  # the release's default is not written


def test_paged_still_means_vllm_and_transformers_has_no_release():
    from planner.cli_serving import request_of
    base = ["plan", MODEL, "--gpu", GPU, "--batch", "8", "--prompt", "1000", "--output", "200"]
    assert request_of(build_parser().parse_args([*base, "--engine", "paged"])) == _req()
    with pytest.raises(PlannerInputError) as e:
        request_of(build_parser().parse_args([*base, "--engine", "transformers", "--engine-version", "0.4.7"]))
    assert e.value.field == "engine_version"


def test_plan_and_plan_request_agree_key_by_key():
    old = api.plan(MODEL, GPU, 8, 1000, 200, gpus=2)
    new = api.plan_request(build(MODEL, GPU, 8, 1000, 200, gpus=2)).as_dict()
    assert list(old) == list(new)
    for k in old:
        assert old[k] == new[k] or (isinstance(old[k], float) and math.isnan(old[k]) and math.isnan(new[k])), k


def test_result_row_is_numeric_with_units_and_every_figure_has_a_source():
    r = api.plan_request(build(MODEL, GPU, 8, 1000, 200, simulate=False))
    row = r.to_row()
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in row.values())
    assert {"memory_total_bytes_per_gpu", "ttft_s", "output_tokens_per_s", "cost_usd_per_1m_output_tokens",
            "kv_budget_bytes_per_gpu"} <= set(row)
    df = pd.DataFrame([row])
    assert all(pd.api.types.is_numeric_dtype(df[c]) for c in df)
    cells = csvsafe.to_csv(df).splitlines()[1].split(",")
    assert all(c == '""' or math.isfinite(float(c)) or float(c) == math.inf for c in cells)  # numbers; NaN left empty
    for name in r.figures():
        assert r.source(name), name
    assert math.isnan(row["ttft_p90_s"])  # not simulated: no percentile, not a made-up one
    assert r.provenance["efficiencies"] in ("calibrated", "datasheet")


def test_kv_budget_is_the_memory_models():
    # "room for KV" has one definition: MemoryModel.kv_budget_bytes (the engine's start-up pool for vLLM)
    req = build(MODEL, GPU, 8, 1000, 200, simulate=False)
    r = api.plan_request(req)
    p = api.build_plan(MODEL, GPU, req.deployment)
    assert r.memory.kv_budget_bytes_per_gpu == p.memory.kv_budget_bytes()
    assert r.memory.capacity_bytes_per_replica == r.memory.capacity_bytes_per_gpu  # TP=1 x PP=1


def test_roofline_times_are_the_work_over_the_derated_peaks():
    r = api.plan_request(build(MODEL, GPU, 1, 2048, 2, simulate=False, engine="transformers"))
    w = r.work
    # compute time = FLOPs / (peak x efficiency x kernel factor), when the roofline (not op tables) times the step
    if "roofline" in r.source("prefill_compute_s"):
        assert w.prefill_compute_s == pytest.approx(
            w.prefill_flops / (w.peak_flops_per_s * w.eff_compute * w.compute_factor), rel=0.05)


def test_percentile_ranges_read_as_english_ordinals():
    from planner.planning import _percentiles

    assert _percentiles({"percentiles": [3.0, 97.0]}) == "3rd-97th percentile"
    assert _percentiles({"percentiles": [2.5, 97.5]}) == "2.5th-97.5th percentile"
    assert _percentiles({"percentiles": [4, 96]}) == "4th-96th percentile"
    assert _percentiles({}) == "5th-95th percentile"  # a table written before the range was chosen


def test_a_simulated_plan_states_its_engine_s_band_around_each_headline():
    # the band is the headline times the engine table's measured / predicted ratios, named by the
    # percentile range fit_e2e.band_tail chose (5th-95th or wider, never past 2.5th-97.5th)
    import re

    from planner import profiles

    r = api.plan_request(build(MODEL, GPU, 8, 1000, 200, engine="paged", server="vllm"))
    table = profiles.latency_bands("vllm")
    assert set(r.latency_bands) == {"ttft", "tpot", "e2e"}
    figures = r.figures()
    heads = {"ttft": figures["ttft_s"], "tpot": figures["tpot_s"], "e2e": figures["e2e_latency_s"]}
    for metric, b in r.latency_bands.items():
        t = table[metric]
        assert b["low_s"] == pytest.approx(heads[metric] * t["low_ratio"])
        assert b["high_s"] == pytest.approx(heads[metric] * t["high_ratio"])
        assert t["low_ratio"] < 1 < t["high_ratio"]
        lo, hi = (float(x) for x in re.fullmatch(r"([\d.]+)(?:st|nd|rd|th)-([\d.]+)th percentile",
                                                    b["coverage"]).groups())
        assert 2.5 <= lo <= 5 and lo + hi == pytest.approx(100)


def test_a_simulated_plan_s_throughput_and_cost_follow_its_simulated_latency():
    # 512 clients of 128 + 128 tokens on TensorRT-LLM: the simulated and the mean-value e2e differ by a quarter;
    # throughput and cost must follow the headline e2e, not the mean-value one (a closed loop: 512 requests in
    # flight, each cycle e2e + the return gap)
    p = api.plan(MODEL, GPU, 512, 128, 128, weights="fp8", kv_dtype="fp8", server="trtllm")
    mv = api.plan(MODEL, GPU, 512, 128, 128, weights="fp8", kv_dtype="fp8", server="trtllm", simulate=False)
    assert p["latency_source"].startswith("simulated")
    assert p["e2e_latency_s"] < 0.9 * p["e2e_mean_value_s"]
    from planner import profiles

    gap = dict(profiles.engine_table("trtllm").constants)["return_gap_s"].value
    assert p["requests_per_s"] == pytest.approx(512 / (p["e2e_latency_s"] + gap))
    assert p["output_tokens_per_s"] == pytest.approx(p["requests_per_s"] * 128)
    assert p["cost_usd_per_1m_output_tokens"] == pytest.approx(p["usd_per_hour"] / (p["output_tokens_per_s"] * 3600) * 1e6)
    assert p["tokens_per_s_per_user"] == pytest.approx(1 / p["tpot_s"])
    # the input tokens' share of the cost is one request's prefill GPU time over the GPU time it holds (1 / requests
    # per second): the same prefill time whichever e2e the throughput comes from
    assert p["prefill_share_of_gpu_time"] / p["requests_per_s"] == pytest.approx(
        mv["prefill_share_of_gpu_time"] / mv["requests_per_s"])
    # unsimulated, the same figures are the mean-value model's
    assert mv["requests_per_s"] == pytest.approx(512 / mv["e2e_latency_s"])
    assert p["output_tokens_per_s"] > 1.1 * mv["output_tokens_per_s"]
