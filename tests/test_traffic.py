"""Traffic as a benchmark runs it: a closed loop's burst start, every request measured, and the
deployment the published end-to-end runs were served with."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from planner import api, profiles
from planner import validate_e2e as v
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.simulate import simulate
from planner.traffic import ROUNDS, Traffic


class StepClock:
    """A timing stub: a pass with prefill tokens takes ``prefill_s``, a decode-only pass ``decode_s``."""

    def __init__(self, prefill_s: float, decode_s: float, budget: int):
        self.prefill_s, self.decode_s = prefill_s, decode_s
        self.kv_groups = ()  # no KV bytes: the cache never limits admission here
        self.dep = SimpleNamespace(engine="paged", block_size=16, mnbt=budget)

    def step(self, decode_batch, decode_context, prefill_tokens=0, prefill_context=0):
        return {"time_s": np.asarray(self.prefill_s if prefill_tokens else self.decode_s)}


def test_a_closed_loop_starts_with_a_burst_and_every_request_counts():
    # 4 clients, prompts of 100 tokens, a 100-token budget (one prompt per pass of 1 s), one output
    # token (a request ends at its prefill pass). All 4 arrive at t = 0: request k's first token
    # comes at (k + 1) s, TTFT 1, 2, 3, 4 s. Each completion sends the next request, which then
    # waits behind the 3 already queued: requests 4..7 get TTFT 4 s each.
    # Mean over all 8: (1 + 2 + 3 + 4 + 4 x 4) / 8 = 26 / 8 = 3.25 s.
    clock = StepClock(1.0, 0.1, budget=100)
    r = simulate(clock, 0, np.full(8, 100), np.full(8, 1), 1e12, max_num_seqs=64, concurrency=4, measure="all")
    np.testing.assert_allclose(np.sort(r.ttft_s), [1, 2, 3, 4, 4, 4, 4, 4])
    assert r.ttft_s.mean() == pytest.approx(3.25)
    # the default measures the middle 80 % by arrival: int(0.1 x 8) = 0 to int(0.9 x 8) = 7, 7 requests
    assert simulate(clock, 0, np.full(8, 100), np.full(8, 1), 1e12, concurrency=4).ttft_s.size == 7


def test_lockstep_decodes_keep_the_burst_spacing():
    # 2 clients, 100-token prompts, a budget of 102 tokens per pass (decodes take theirs first, as
    # vLLM's scheduler does), 3 output tokens; a pass with prefill takes 1 s, a decode-only pass 0.1 s.
    # Pass 1 (0-1 s): r0 gets 100 tokens (first token at 1), r1 a 2-token chunk.
    # Pass 2 (1-2): r0 decodes (1 token, budget left 101), r1 its last 98: first token at 2 (TTFT 2).
    # Pass 3 (2-2.1, decode only): r0 ends with 3 tokens; r2 arrives at 2.1.
    # Pass 4 (2.1-3.1): r1 decodes and ends; r2 gets 100 tokens: first token at 3.1 (TTFT 1.0).
    # Pass 5 (3.1-4.1): r3, sent at 3.1, gets its 100: TTFT 1.0. The burst's queueing stays in the
    # first wave; later requests arrive one pass apart and wait for nothing.
    clock = StepClock(1.0, 0.1, budget=102)
    r = simulate(clock, 0, np.full(4, 100), np.full(4, 3), 1e12, concurrency=2, measure="all")
    np.testing.assert_allclose(r.ttft_s, [1.0, 2.0, 1.0, 1.0])


def test_closed_loop_traffic_runs_rounds_per_client():
    assert Traffic(1024, 128, concurrency=16).n_requests() == ROUNDS * 16 == 320
    assert Traffic(1024, 128, concurrency=2).n_requests() == 120  # at least 120 requests
    assert Traffic(1024, 128, concurrency=1000).n_requests() == 4000  # capped for simulation time
    assert Traffic(1024, 128, request_rate_per_s=2.0).n_requests() == 400


@pytest.mark.parametrize("kw, field", [
    ({}, "traffic"),
    ({"concurrency": 4, "request_rate_per_s": 1.0}, "traffic"),
    ({"concurrency": 0}, "concurrency"),
    ({"request_rate_per_s": -1.0}, "request_rate"),
    ({"concurrency": 4, "distribution": "zipf"}, "distribution"),
])
def test_bad_traffic_names_the_field(kw, field):
    with pytest.raises(PlannerInputError) as e:
        Traffic(1024, 128, **kw)
    assert e.value.field == field


def test_serve_measures_every_request_of_a_closed_loop():
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment())
    from planner.traffic import serve
    r = serve(p, Traffic(512, 16, concurrency=8))
    assert r.ttft_s.size == r.completed == 160  # 20 rounds x 8 clients, all measured


def _row(backend, batch, isl):
    return pd.Series({"backend": backend, "batch_size": float(batch), "isl": isl, "tp_size": 2.0, "pp_size": 1.0,
                      "weights": "bf16", "version": None})


def test_the_published_runs_are_predicted_with_the_generator_s_flags():
    spec = profiles.load_model("Llama-3.1-70B")
    # aiconfigurator's vllm.rule: max_num_tokens = batch + isl + 1500 = 64 + 1024 + 1500 = 2588
    d = v.deployment(_row("vllm", 64, 1024), spec)
    assert (d.max_num_batched_tokens, d.max_num_seqs) == (2588, 64)
    assert d.cuda_graph_sizes == tuple(range(1, 65))
    # trtllm.rule rounds up to its 32-token blocks: ceil(2588 / 32) = 81, 81 x 32 = 2592
    assert v.deployment(_row("trtllm", 64, 1024), spec).max_num_batched_tokens == 2592
    # sglang.rule: max_prefill_tokens = isl + 1500 = 2524, with --enable-mixed-chunk
    s = v.deployment(_row("sglang", 64, 1024), spec)
    assert (s.max_num_batched_tokens, s.enable_mixed_chunk) == (2524, True)


def test_sglang_mixed_chunk_switches_its_scheduler_to_mixed_passes():
    plain = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(server="sglang"))
    mixed = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(server="sglang", enable_mixed_chunk=True))
    assert plain.scheduler.policy == "prefill_first"
    assert mixed.scheduler.policy == "mixed"


def test_explicit_capture_sizes_replace_the_engine_s_and_bound_the_graphs():
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(max_num_seqs=8, cuda_graph_sizes=(1, 2, 3, 4, 5, 6, 7, 8)))
    assert p.scheduler.graph_sizes == (1, 2, 3, 4, 5, 6, 7, 8)
    assert p.scheduler.padded(5) == 5
    assert p.timing.eff.graph_max_tokens == 8
    with pytest.raises(PlannerInputError) as e:
        Deployment(cuda_graph_sizes=(0, 8))
    assert e.value.field == "cuda_graph_sizes"


def test_engine_costs_are_fitted_within_their_physical_bounds():
    # five independent unknowns (a diagonal system): each cost is its own target clipped to
    # [0, UPPER]: request 0.10 s wanted -> 0.05 s (the bound), eager -0.5 s -> 0, step 0.01 s (inside 0.02),
    # prefill 3 us per token and layer -> 1 us (the bound), the ranks' all-reduce spread 8 us (inside 15 us)
    import numpy as np

    from planner import fit_e2e
    x = fit_e2e._bounded_lstsq(np.eye(5), np.array([0.10, -0.5, 0.01, 3e-6, 8e-6]))
    np.testing.assert_allclose(x, [0.05, 0.0, 0.01, 1e-6, 8e-6])
    assert fit_e2e.UPPER == {"request_overhead_s": 0.05, "eager_layer_overhead_s": 1e-3, "step_overhead_s": 0.02,
                             "prefill_token_layer_s": 1e-6, "allreduce_skew_s": 15e-6}
    # coupled: y = x0 + x2 on one row, x2 alone on another: 0.03 = x0 + x2, 0.01 = x2 -> (0.02, 0, 0.01)
    a = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(fit_e2e._bounded_lstsq(a, np.array([0.03, 0.01])), [0.02, 0.0, 0.01], atol=1e-12)


def test_the_fitted_prefill_cost_is_per_prompt_token_and_layer_split_across_tp():
    # Llama-3.1-8B (32 layers) on H100 runs on the measured operator tables; 1 us per prompt token and
    # layer at TP 1: a 1,000-token chunk adds 1000 x 32 x 1e-6 = 32 ms at TP 1, 16 ms at TP 2 (each rank
    # does half); a decode-only step adds nothing; prefill() of 2 prompts of 1,000 adds 2 x 32 = 64 ms
    for tp, want in ((1, 0.032), (2, 0.016)):
        p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(tp=tp))
        assert p.timing.ops is not None
        q = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=1e-6)
        base = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=0.0)
        d = float(q.timing.step(4, 500, 1000, 1000)["time_s"]) - float(base.timing.step(4, 500, 1000, 1000)["time_s"])
        assert d == pytest.approx(want, rel=1e-9)
        assert float(q.timing.step(4, 500)["time_s"]) == float(base.timing.step(4, 500)["time_s"])
        if tp == 1:
            extra = float(q.timing.prefill(2, 1000)["time_s"]) - float(base.timing.prefill(2, 1000)["time_s"])
            assert extra == pytest.approx(0.064, rel=1e-9)
            assert q.scheduler.prefill_token_layer_s == 1e-6
    assert np.isclose(base.timing.eff.prefill_token_layer_s, 0.0)


def test_the_prefill_cost_is_the_light_load_growth_regressed_on_layers_over_tp():
    from planner import fit_e2e
    # two deployments of an 80-layer model: TP 1 misses 44.8 us per prompt token, TP 2 22.4 us;
    # through the origin on layers / TP: (80 x 44.8 + 40 x 22.4) / (80^2 + 40^2) us = 4480 / 8000 = 0.56 us
    light = pd.DataFrame({"layers_over_tp": [80.0, 40.0], "extra_s_per_token": [44.8e-6, 22.4e-6],
                          "ids": [("a", "b"), ("c", "d")]})
    assert fit_e2e.prefill_cost(light) == pytest.approx(0.56e-6)
    # leave the TP 1 runs out: 22.4 / 40 = 0.56 us from TP 2 alone; none left: no figure
    assert fit_e2e.prefill_cost(light, pd.Index(["c", "d", "x"])) == pytest.approx(0.56e-6)
    assert fit_e2e.prefill_cost(light, pd.Index(["x"])) is None
    # tables slower than the engine: 0, not a negative cost; far slower engine: the 1 us bound
    assert fit_e2e.prefill_cost(light.assign(extra_s_per_token=[-5e-6, -1e-6])) == 0.0
    assert fit_e2e.prefill_cost(light.assign(extra_s_per_token=[1e-3, 1e-3])) == fit_e2e.UPPER["prefill_token_layer_s"]


def test_the_end_to_end_fit_holds_the_prefill_cost_at_its_light_load_value():
    from planner import fit_e2e
    # three runs predicted at zero costs; TTFT rises 1 s per s of request cost and 1000 s per s of prefill
    # cost per token and layer. Measured = predicted + 20 ms + 1000 x 0.56 us: the fit must return the
    # light-load prefill cost (0.56 us) and put the other 20 ms in the request cost, not trade them
    ids = ["r1", "r2", "r3"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2, 0.4], "tpot_s": [0.01, 0.02, 0.03],
                         "silicon_tpot_ms": [10.0, 20.0, 30.0]})
    base["silicon_ttft_ms"] = (base["ttft_s"] + 0.020 + 1000 * 0.56e-6) * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {"request_overhead_s": zero.assign(ttft=1.0), "eager_layer_overhead_s": zero, "step_overhead_s": zero,
              "prefill_token_layer_s": zero.assign(ttft=1000.0), "allreduce_skew_s": zero}
    light = pd.DataFrame({"layers_over_tp": [80.0], "extra_s_per_token": [44.8e-6], "ids": [tuple(ids)]})
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), light)
    costs = fit_e2e.fit(s)
    assert costs["prefill_token_layer_s"] == pytest.approx(0.56e-6)
    assert costs["request_overhead_s"] == pytest.approx(0.020)
    assert costs["eager_layer_overhead_s"] == 0.0 and costs["step_overhead_s"] == 0.0
    assert costs["allreduce_skew_s"] == 0.0


def test_vllm_prefill_grows_faster_than_the_operator_tables_and_tensorrt_llm_s_does_not():
    # the published runs at four clients (profiles/reference): vLLM's mean TTFT grows 1.13-2.16x as fast
    # with the prompt (1,024 -> 8,192) as the tables' prefill of one prompt; TensorRT-LLM's Llama-3.1-70B
    # 0.91-1.10x (benchmarks/prefill_slope.py prints the table)
    g = v.light_load_growth(v.rows(("vllm",)))
    ratio = g["measured_growth_s"] / g["tables_growth_s"]
    assert len(g) >= 10 and (ratio > 1.1).all()
    assert set(g["model"]) == {"Llama-3.1-70B", "gpt-oss-120b"}
    t = v.light_load_growth(v.rows(("trtllm",)))
    llama = t[t["model"] == "Llama-3.1-70B"]
    r = llama["measured_growth_s"] / llama["tables_growth_s"]
    assert len(llama) == 4 and r.between(0.85, 1.15).all()


def test_the_all_reduce_wait_is_the_slowest_rank_s_two_a_layer_per_pass_and_only_at_tp_above_1():
    # Llama-3.1-8B (32 layers) on H100, ranks spread 10 us at each all-reduce: the slowest of two arrives
    # 10 us / sqrt(pi) = 5.642 us after the mean rank, so every pass at TP 2 adds 2 x 32 x 5.642 us =
    # 0.3611 ms, decode or prefill alike; prefill() of 20,000 tokens in 8,192-token passes (3 passes) adds
    # 3 x 0.3611 ms; at TP 4 the slowest of four, 1.0294 x 10 us: 2 x 32 x 10.294 us = 0.6588 ms a pass;
    # at TP 1 there is no all-reduce and nothing is added
    one = 2 * 32 * 10e-6
    for tp, want in ((1, 0.0), (2, one / np.sqrt(np.pi)), (4, one * 1.02938)):
        p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(tp=tp))
        q = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=0.0, allreduce_skew_s=10e-6)
        base = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=0.0, allreduce_skew_s=0.0)
        for args in ((16, 1000), (4, 500, 1000, 1000)):
            d = float(q.timing.step(*args)["time_s"]) - float(base.timing.step(*args)["time_s"])
            assert d == pytest.approx(want, rel=1e-4, abs=1e-12)
        if tp == 2:
            assert p.memory.dep.mnbt == 8192
            extra = float(q.timing.prefill(1, 20000)["time_s"]) - float(base.timing.prefill(1, 20000)["time_s"])
            assert extra == pytest.approx(3 * want, rel=1e-4)
            assert q.scheduler.allreduce_skew_s == 10e-6


def test_the_slowest_of_n_ranks_is_the_expected_maximum_of_n_normals():
    from planner.timing import expected_max_normal
    # closed forms: one rank waits for nobody; E max(X, Y) = E|X - Y| / 2 = sqrt(2) sqrt(2 / pi) / 2 =
    # 1 / sqrt(pi); of three, 3 / (2 sqrt(pi)); the tabulated 1.02938 (four) and 1.42360 (eight)
    assert expected_max_normal(1) == 0.0
    assert expected_max_normal(2) == pytest.approx(1 / np.sqrt(np.pi), rel=1e-6)
    assert expected_max_normal(3) == pytest.approx(3 / (2 * np.sqrt(np.pi)), rel=1e-6)
    assert expected_max_normal(4) == pytest.approx(1.02938, abs=1e-5)
    assert expected_max_normal(8) == pytest.approx(1.42360, abs=1e-5)
    assert expected_max_normal(16) > expected_max_normal(8)  # more ranks, a later slowest


def test_the_all_reduce_cost_is_fitted_on_tpot_alone():
    from planner import fit_e2e
    # two runs at TP > 1: TPOT rises 100 s per s of all-reduce cost, TTFT 1000 s per s. Measured TPOT =
    # predicted + 100 x 8 us = +0.8 ms; measured TTFT is 30 % below the prediction (a gap of its own). A
    # joint fit would hold the all-reduce cost at 0 to spare TTFT; fitted on TPOT it is 8 us
    ids = ["r1", "r2"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2], "tpot_s": [0.010, 0.020]})
    base["silicon_tpot_ms"] = (base["tpot_s"] + 100 * 8e-6) * 1e3
    base["silicon_ttft_ms"] = base["ttft_s"] * 0.7 * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["allreduce_skew_s"] = zero.assign(ttft=1000.0, tpot=100.0)
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    assert fit_e2e.fit(s)["allreduce_skew_s"] == pytest.approx(8e-6)


def test_runs_missed_by_more_than_2x_do_not_decide_the_all_reduce_cost():
    from planner import fit_e2e
    # as above (TPOT + 100 x 8 us measured on r1, r2), plus r3 whose TPOT is predicted 5x too high (a
    # 512-client run): its -400 % would pull the cost to 0; it is left out of this fit
    ids = ["r1", "r2", "r3"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2, 0.3], "tpot_s": [0.010, 0.020, 0.050]})
    base["silicon_tpot_ms"] = (base["tpot_s"] + 100 * 8e-6) * 1e3
    base.loc[2, "silicon_tpot_ms"] = 10.0
    base["silicon_ttft_ms"] = base["ttft_s"] * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["allreduce_skew_s"] = zero.assign(tpot=100.0)
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    assert fit_e2e.fit(s)["allreduce_skew_s"] == pytest.approx(8e-6)


def _held(ratios_by_family: dict[str, list[float]]) -> pd.DataFrame:
    """Held-out errors whose measured / predicted ratios are the given ones (error = 1 / ratio - 1)."""
    rows = [{"family": fam, "ttft_err_pct": (1 / r - 1) * 100} for fam, rs in ratios_by_family.items() for r in rs]
    return pd.DataFrame(rows)


def test_the_band_is_a_percentile_range_of_measured_over_predicted():
    from planner import fit_e2e
    # ratios 0.5, then 1.0 x 18, then 2.0 (20 points; pandas' linear quantile at position q x 19):
    # 5th percentile at 0.95: 0.5 + 0.95 x (1.0 - 0.5) = 0.975; 95th at 18.05: 1.0 + 0.05 x (2.0 - 1.0) = 1.05;
    # 2.5th at 0.475: 0.5 + 0.475 x 0.5 = 0.7375; 97.5th at 18.525: 1.0 + 0.525 x 1.0 = 1.525
    e = _held({"a": [0.5] + [1.0] * 18 + [2.0]})["ttft_err_pct"]
    assert fit_e2e.ratio_band(e, 0.05) == pytest.approx((0.975, 1.05))
    assert fit_e2e.ratio_band(e, 0.025) == pytest.approx((0.7375, 1.525))


def test_the_band_stays_at_5_to_95_when_bands_built_without_a_model_hold_its_runs():
    from planner import fit_e2e
    # three models with the same errors. The other two's 40 ratios are 0.5, 0.5, 1.0 x 36, 2.0, 2.0: the
    # 5th percentile at position 0.05 x 39 = 1.95 is 0.5 + 0.95 x 0.5 = 0.975, the 95th at 37.05 is
    # 1.0 + 0.05 x 1.0 = 1.05; each model's 18 runs at 1.0 are inside, its 0.5 and 2.0 outside: 54 of 60 =
    # 90 %, the target, at the narrowest tail. Nested (the tail chosen on two models, 20 points each: the
    # same 0.975-1.05 band, 18 of 20 = 90 %), the same 90 %
    same = [0.5] + [1.0] * 18 + [2.0]
    held = _held({"a": same, "b": same, "c": same})
    assert fit_e2e.band_tail(held, "ttft") == 0.05
    assert fit_e2e.band_coverage(held, "ttft", 0.05) == pytest.approx(0.9)
    assert fit_e2e.band_coverage(held, "ttft") == pytest.approx(0.9)


def test_the_band_widens_at_most_to_2_5_to_97_5_and_its_coverage_says_when_that_falls_short():
    from planner import fit_e2e
    # model c is measured 3x slower than predicted on every run, a and b never beyond 1.2x: no band built
    # from a and b reaches 3 (their top ratios 1.0, 1.1, 1.2: the 95th percentile at position 37.05 of 40
    # is 1.0 + 0.05 x 0.1 = 1.005), so c's 20 runs are outside at any tail; a judged against b and c (lowest
    # ratios 1.0, highest 3.0) and b against a and c are inside. Coverage 40 of 60, below 90 % at every
    # tail, so the widest is chosen
    held = _held({"a": [1.0] * 19 + [1.2], "b": [1.0] * 19 + [1.1], "c": [3.0] * 20})
    assert fit_e2e.band_tail(held, "ttft") == fit_e2e.BAND_TAILS[-1] == 0.025
    assert fit_e2e.band_coverage(held, "ttft") == pytest.approx(40 / 60)
    assert fit_e2e.band_coverage(held, "ttft", 0.05) == pytest.approx(40 / 60)


def test_ttft_growth_per_client_is_k_of_s_times_1_plus_k_c():
    from benchmarks.ttft_load import growth
    # TTFT = S (1 + k C) with S = 100 ms and k = 0.05: 120 ms at 4 clients, 140 at 8, 180 at 16; a run
    # 10 ms slower at 16 clients (190) pulls k to (4 x 0.2 + 8 x 0.4 + 16 x 0.9) / (16 + 64 + 256) = 0.0548
    c, s = np.array([4.0, 8.0, 16.0]), np.full(3, 100.0)
    assert growth(c, np.array([120.0, 140.0, 180.0]), s) == pytest.approx(0.05)
    assert growth(c, np.array([120.0, 140.0, 190.0]), s) == pytest.approx(18.4 / 336)
