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


def test_with_async_scheduling_a_request_waits_for_the_pass_already_scheduled():
    from planner.scheduler import SchedulerProfile
    # the clients, lengths and passes of the test above, served by vLLM with async scheduling: pass n+1 is
    # scheduled when pass n starts (EngineCore.step_with_batch_queue), so a request joins a pass only if it
    # arrived before the pass ahead of it started, or the engine was idle.
    # Passes 1-3 as above (both requests arrive at 0 to an idle engine): TTFT 1 and 2; r0 ends at 2.1 and
    # sends r2. Pass 4 (2.1-2.2) was scheduled at 2.0, before r2: r1 decodes alone and ends, sending r3 at 2.2.
    # Pass 5 (2.2-3.2, scheduled at 2.1): r2's 100 tokens, first token at 3.2 (TTFT 1.1). Pass 6 (3.2-4.2,
    # scheduled at 2.2): r2 decodes, r3's 100 tokens, first token at 4.2 (TTFT 2.0). Synchronous: 1 and 1
    clock = StepClock(1.0, 0.1, budget=102)
    lengths = (np.full(4, 100), np.full(4, 3), 1e12)
    for ahead, ttft in ((False, [1.0, 2.0, 1.0, 1.0]), (True, [1.0, 2.0, 1.1, 2.0])):
        prof = SchedulerProfile("vllm", "0.14.0", 102, 64, async_scheduling=ahead)
        r = simulate(clock, 0, *lengths, concurrency=2, measure="all", profile=prof)
        np.testing.assert_allclose(r.ttft_s, ttft)


def test_an_idle_engine_schedules_a_request_as_it_arrives_even_when_running_ahead():
    from planner.scheduler import SchedulerProfile
    # one client, 100-token prompts, one output token (a request ends with its prefill pass of 1 s): r0 arrives at
    # 0 to an idle engine and ends at 1, sending r1 at 1; the engine is idle again, so r1 is scheduled at once,
    # not a pass later: TTFT 1, 1, 1 with async scheduling as without
    clock = StepClock(1.0, 0.1, budget=100)
    prof = SchedulerProfile("vllm", "0.14.0", 100, 64, async_scheduling=True)
    r = simulate(clock, 0, np.full(3, 100), np.full(3, 1), 1e12, concurrency=1, measure="all", profile=prof)
    np.testing.assert_allclose(r.ttft_s, [1.0, 1.0, 1.0])


def test_a_client_s_next_request_reaches_the_engine_a_return_gap_later_on_average():
    from planner.scheduler import SchedulerProfile
    # one client, 100-token prompts, 3 output tokens, a 200-token budget: every request takes the engine
    # 1 + 0.1 + 0.1 = 1.2 s (its prefill pass gives the first token, two decode passes the rest), alone.
    # Without a gap 400 requests end at 400 x 1.2 = 480 s. With a request cost of 30 ms the client's clock adds
    # it to every TTFT (1.03 s) and end to end (1.23 s) and the run still ends at 480 s; with a return gap of
    # 50 ms each of the 399 later requests reaches the engine a gap after the last one ended, drawn from the
    # exponential with mean 50 ms: the run ends near 480 + 399 x 0.05 = 499.95 s (the mean of 399 draws is
    # within 3 standard deviations, 3 x 0.05 / sqrt(399) = 7.5 ms, of 50 ms: 480 + 399 x [0.0425, 0.0575]
    # = 497.0 - 502.9 s), and the gap is not on the client's clock (TTFT and end to end unchanged)
    clock = StepClock(1.0, 0.1, budget=200)
    lengths = (np.full(400, 100), np.full(400, 3), 1e12)
    exact = (480 - 1e-6, 480 + 1e-6)
    for cost, gap, ttft, e2e, (lo, hi) in ((0.0, 0.0, 1.0, 1.2, exact), (0.03, 0.0, 1.03, 1.23, exact),
                                           (0.0, 0.05, 1.0, 1.2, (497.0, 502.9)),
                                           (0.03, 0.05, 1.03, 1.23, (497.0, 502.9))):
        prof = SchedulerProfile("vllm", "0.12.0", 200, 64, request_overhead_s=cost, return_gap_s=gap)
        r = simulate(clock, 0, *lengths, concurrency=1, measure="all", profile=prof)
        np.testing.assert_allclose(r.ttft_s, ttft)
        np.testing.assert_allclose(r.e2e_s, e2e)
        assert lo <= r.duration_s <= hi


def test_the_gap_before_a_client_s_next_request_keeps_clients_together():
    from planner.scheduler import SchedulerProfile
    # 4 clients, 100-token prompts that fill a 1 s pass alone, 30 output tokens at 0.1 s a decode pass. A prefill
    # pass stalls every decode, so clients that were prefilled one after another finish within a few decode
    # passes of each other. Sent back at once (no return gap), the first to finish is prefilled before the
    # others finish and spaces them out again: after the first rounds every request waits for the same one
    # other prefill (one TTFT for all). With a return gap of 50 ms on average before each next request reaches the
    # engine, those that finish within it come back together and queue behind each other: the engine-side TTFT
    # of the later requests varies and is higher on average by more than the gap itself
    clock = StepClock(1.0, 0.1, budget=100)
    lengths = (np.full(200, 100), np.full(200, 30), 1e12)
    later = {}
    for gap in (0.0, 0.05):
        prof = SchedulerProfile("vllm", "0.12.0", 100, 64, return_gap_s=gap)
        later[gap] = simulate(clock, 0, *lengths, concurrency=4, measure="all", profile=prof).ttft_s[40:]
    assert np.ptp(later[0.0]) < 1e-9
    assert np.ptp(later[0.05]) > 0.5 and later[0.05].mean() > later[0.0].mean() + 0.05


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



def test_a_request_longer_than_the_pool_is_refused_not_recomputed_for_ever():
    # Qwen3-32B bf16 on one H100 under vLLM 0.11.0: a pool of 4.53 GiB at 64 layers x 8 KV heads x 128 x 2 (K, V)
    # x 2 B = 262,144 B per token, 18,544 tokens (planner capacity); one request of 30,000 + 100 tokens needs
    # 30,100 x 262,144 B = 7.35 GiB. Until 2026-12-03 the simulation preempted it, recomputed its prompt, gained one
    # token and preempted it again, for ever (`plan --prompt 30000` never returned)
    from planner.traffic import serve_lengths
    p = api.build_plan("Qwen3-32B", "H100-SXM", Deployment(server="vllm", server_version="0.11.0"))
    with pytest.raises(PlannerInputError) as e:
        serve_lengths(p, np.array([30_000, 30_000]), np.array([100, 100]), concurrency=2)
    assert e.value.field == "kv_capacity"
    assert "30,000 prompt + 100 output tokens" in e.value.problem and "7.35 GiB" in e.value.problem
    # the plan keeps its mean-value figures and says why it did not simulate
    out = api.plan("Qwen3-32B", "H100-SXM", 4, 30_000, 100, server="vllm", server_version="0.11.0")
    assert out["latency_source"].startswith("mean-value") and "not simulated: the longest request" in out["latency_source"]
    assert out["ttft_s"] == out["ttft_lower_bound_s"]

def _row(backend, batch, isl, osl=8192):
    return pd.Series({"backend": backend, "batch_size": float(batch), "isl": isl, "osl": osl, "tp_size": 2.0,
                      "pp_size": 1.0, "weights": "bf16", "version": None})


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


def test_the_pipeline_runs_are_predicted_with_inferencex_s_launch_flags():
    llama, oss = profiles.load_model("Llama-3.1-70B"), profiles.load_model("gpt-oss-120b")
    # 70b_fp8_h200_slurm.sh: max-num-batched-tokens 8192, --max-num-seqs $CONC, vLLM's own CUDA graphs
    d = v.deployment(_row("vllm", 16, 8192), llama, "inferencex")
    assert (d.max_num_batched_tokens, d.max_num_seqs, d.cuda_graph_sizes) == (8192, 16, None)
    # gptoss_fp4_h200_slurm.sh: max-cudagraph-capture-size 2048: 1, 2, 4, 8 ... 248 by 8, 256 ... 2048 by 16
    g = v.deployment(_row("vllm", 16, 1024), oss, "inferencex").cuda_graph_sizes
    assert g[:4] == (1, 2, 4, 8) and g[-1] == 2048 and len(g) == 3 + 31 + 113
    # dsr1_fp8_h200.sh: --chunked-prefill-size 32768 --max-running-requests 512 --mem-fraction-static 0.82,
    # no mixed chunks
    s = v.deployment(_row("sglang", 16, 1024), llama, "inferencex")
    assert (s.max_num_batched_tokens, s.max_num_seqs, s.enable_mixed_chunk) == (32768, 512, False)
    assert s.gpu_memory_utilization == 0.82
    # and no --kv-cache-dtype: SGLang's default (bf16) even on an fp8 row, where vLLM's fp8 rows serve an fp8 cache
    fp8 = lambda backend: pd.concat([_row(backend, 16, 1024), pd.Series({"precision": "fp8"})])  # noqa: E731
    assert v.deployment(fp8("sglang"), llama, "inferencex").kv_dtype == "bf16"
    assert v.deployment(fp8("vllm"), llama, "inferencex").kv_dtype == "fp8"
    assert v.deployment(fp8("sglang"), llama, "defaults").kv_dtype == "fp8"  # the gap rows: the generator's fp8 KV
    # gptoss_fp4_h200_trt_slurm.sh: --max_batch_size $CONC --max_num_tokens 20000; the Llama script 16384
    t = v.deployment(_row("trtllm", 16, 1024), oss, "inferencex")
    assert (t.max_num_batched_tokens, t.max_num_seqs) == (20000, 16)
    assert v.deployment(_row("trtllm", 16, 1024), llama, "inferencex").max_num_batched_tokens == 16384


def test_inferencex_draws_ten_rounds_of_lengths_between_0_8_and_1_times_the_stated_one():
    # --num-prompts CONC x 10 and --random-range-ratio 0.8: 4 clients send 40 requests whose lengths are
    # whole numbers in [int(0.8 x 8192), 8192] = [6553, 8192], mean (6553 + 8192) / 2 = 7372.5
    prompts, outputs = v.lengths("aic-pipeline", 8192, 1024, 4)
    assert prompts.size == outputs.size == 40
    assert prompts.min() >= 6553 and prompts.max() <= 8192 and outputs.min() >= 819 and outputs.max() <= 1024
    assert len(set(prompts)) > 30  # drawn, not one length
    assert v.mean_length("aic-pipeline", 8192) == 7372.5
    # aiperf's gap-analysis runs keep the stated length, twenty rounds (8 clients: 160 requests)
    fixed, _ = v.lengths("gap-analysis", 8192, 1024, 8)
    assert fixed.size == 160 and set(fixed) == {8192} and v.mean_length("gap-analysis", 8192) == 8192.0


def test_drawn_lengths_break_the_lockstep_that_fixed_ones_keep():
    # Llama-3.1-70B fp8 on 8 H100, 4 clients, 1,024 in and out, a 8,192-token budget: with fixed lengths
    # the four first prompts share one pass and the clients stay in that step, so every later request
    # waits for the same three other prompts (one TTFT for all); drawn lengths spread the clients, so
    # most later requests find the engine decoding and are prefilled alone: their median TTFT is lower
    # (no return gap: with one, clients that finish together come back apart by the gaps drawn for them)
    p = api.build_plan("Llama-3.1-70B", "H100-SXM", Deployment(weights="fp8", kv_dtype="fp8", tp=8,
                                                              max_num_seqs=4, max_num_batched_tokens=8192))
    c = p.scheduler
    p = api.with_engine_costs(p, c.step_overhead_s, c.request_overhead_s, c.eager_layer_overhead_s, c.eager_overlaps,
                              c.prefill_token_layer_s, c.allreduce_spread, return_gap_s=0.0)
    from planner.traffic import serve_lengths
    run = lambda pr, out: serve_lengths(p, pr, out, concurrency=4).ttft_s[8:]  # noqa: E731
    fixed = run(np.full(40, 1024), np.full(40, 1024))
    drawn = run(*v.lengths("aic-pipeline", 1024, 1024, 4))
    assert np.ptp(fixed) < 1e-9  # lockstep: one TTFT after the first rounds
    assert np.median(drawn) < 0.8 * np.median(fixed)


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
    # seven independent unknowns (a diagonal system): each cost is its own target clipped to
    # [0, UPPER]: request 0.10 s wanted -> 0.05 s (the bound), eager -0.5 s -> 0, step 0.01 s (inside 0.02),
    # prefill 3 us per token and layer -> 1 us (the bound), the ranks' all-reduce spread 0.5 of the decode
    # work -> 0.3 (the bound), a closed loop's return gap 17 ms -> 10 ms (the bound), 80 us per decoding
    # sequence -> 50 us (the bound)
    import numpy as np

    from planner import fit_e2e
    x = fit_e2e._bounded_lstsq(np.eye(7), np.array([0.10, -0.5, 0.01, 3e-6, 0.5, 0.017, 80e-6]))
    np.testing.assert_allclose(x, [0.05, 0.0, 0.01, 1e-6, 0.3, 0.01, 50e-6])
    assert fit_e2e.UPPER == {"request_overhead_s": 0.05, "eager_layer_overhead_s": 1e-3, "step_overhead_s": 0.02,
                             "prefill_token_layer_s": 1e-6, "allreduce_spread": 0.3, "return_gap_s": 0.01,
                             "sequence_step_s": 50e-6}
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


def _light_sensitivity(meas_ms: dict, pred_s: dict, slope: dict, light_ids, start: float = 0.0):
    """A Sensitivity of runs measured ``meas_ms``, simulated ``pred_s`` at the start costs, whose TTFT
    moves ``slope`` s per s of prefill cost (no other cost moves anything)."""
    from planner import fit_e2e
    ids = list(meas_ms)
    base = pd.DataFrame({"id": ids, "ttft_s": [pred_s[i] for i in ids], "tpot_s": 0.01,
                         "silicon_ttft_ms": [meas_ms[i] for i in ids], "silicon_tpot_ms": 10.0})
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["prefill_token_layer_s"] = zero.assign(ttft=[slope[i] for i in ids])
    light = pd.DataFrame({"ids": [s + lo for s, lo in light_ids], "ids_short": [s for s, _ in light_ids],
                          "ids_long": [lo for _, lo in light_ids]})
    return fit_e2e.Sensitivity(base, slopes, {**dict.fromkeys(fit_e2e.PARAMS, 0.0), "prefill_token_layer_s": start},
                               light)


def test_the_prefill_cost_closes_the_light_load_growth_the_simulation_misses():
    from planner import fit_e2e
    # two deployments at 4 clients, a short and a long prompt each. Deployment A: measured growth
    # 700 - 100 = 600 ms, simulated 500 - 100 = 400 ms (its first wave included), the long run's TTFT moving
    # 400,000 s per s of cost (the short one's 50,000): a gap of 0.2 s on a slope of 350,000. B: 350 - 50 =
    # 300 ms against 250 - 50 = 200 ms, slopes 200,000 / 25,000: 0.1 s on 175,000. Least squares:
    # (350,000 x 0.2 + 175,000 x 0.1) / (350,000^2 + 175,000^2) = 87,500 / 1.53125e11 = 0.5714 us
    meas = {"a1": 100.0, "a8": 700.0, "b1": 50.0, "b8": 350.0}
    pred = {"a1": 0.1, "a8": 0.5, "b1": 0.05, "b8": 0.25}
    slope = {"a1": 5e4, "a8": 4e5, "b1": 2.5e4, "b8": 2e5}
    s = _light_sensitivity(meas, pred, slope, [(("a1",), ("a8",)), (("b1",), ("b8",))])
    assert fit_e2e.prefill_cost(s) == pytest.approx(0.2 / 350_000, rel=1e-9)  # B is A halved: one answer
    # from a start of 0.3 us the step is the same 0.5714 us: 0.8714 us
    s3 = _light_sensitivity(meas, pred, slope, [(("a1",), ("a8",)), (("b1",), ("b8",))], start=0.3e-6)
    assert fit_e2e.prefill_cost(s3) == pytest.approx(0.3e-6 + 0.2 / 350_000, rel=1e-9)
    # leave B's runs out: A alone gives the same; none left: no figure
    assert fit_e2e.prefill_cost(s, pd.Index(["a1", "a8", "x"])) == pytest.approx(0.2 / 350_000, rel=1e-9)
    assert fit_e2e.prefill_cost(s, pd.Index(["x"])) is None
    # a simulation already slower than the runs: 0, not a negative cost; far faster: the 1 us bound
    slow = _light_sensitivity({**meas, "a8": 300.0, "b8": 150.0}, pred, slope, [(("a1",), ("a8",)), (("b1",), ("b8",))])
    assert fit_e2e.prefill_cost(slow) == 0.0
    fast = _light_sensitivity({**meas, "a8": 9000.0, "b8": 4500.0}, pred, slope, [(("a1",), ("a8",)), (("b1",), ("b8",))])
    assert fit_e2e.prefill_cost(fast) == fit_e2e.UPPER["prefill_token_layer_s"]


def test_the_end_to_end_fit_holds_the_prefill_cost_at_its_light_load_value():
    from planner import fit_e2e
    # runs r1 (short) and r3 (long) of one deployment, r2 another: TTFT rises 1 s per s of request cost,
    # and 1000 / 1000 / 8000 s per s of prefill cost. Measured = predicted + 20 ms + slope x 0.56 us: the
    # light-load growth r1 -> r3 is 7000 x 0.56 us = 3.92 ms over the simulation's, so the prefill cost is
    # 0.56 us, and the other 20 ms go to the request cost, not traded against it
    ids = ["r1", "r2", "r3"]
    slope = {"r1": 1000.0, "r2": 1000.0, "r3": 8000.0}
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2, 0.4], "tpot_s": [0.01, 0.02, 0.03],
                         "silicon_tpot_ms": [10.0, 20.0, 30.0]})
    base["silicon_ttft_ms"] = (base["ttft_s"] + 0.020 + base["id"].map(slope) * 0.56e-6) * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {"request_overhead_s": zero.assign(ttft=1.0), "eager_layer_overhead_s": zero, "step_overhead_s": zero,
              "prefill_token_layer_s": zero.assign(ttft=[slope[i] for i in ids]), "allreduce_spread": zero,
              "return_gap_s": zero, "sequence_step_s": zero}
    light = pd.DataFrame({"ids": [("r1", "r3")], "ids_short": [("r1",)], "ids_long": [("r3",)]})
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), light)
    costs = fit_e2e.fit(s)
    assert costs["prefill_token_layer_s"] == pytest.approx(0.56e-6)
    assert costs["request_overhead_s"] == pytest.approx(0.020)
    assert costs["eager_layer_overhead_s"] == 0.0 and costs["step_overhead_s"] == 0.0
    assert costs["allreduce_spread"] == 0.0


def _request_sensitivity(meas_ms: dict, pred_s: dict, light_ids, start: float = 0.0):
    """Runs measured ``meas_ms``, simulated ``pred_s``, whose TTFT rises 1 s per s of request cost (no other
    cost moves anything); ``light_ids``: the (short, long) light-load pairs."""
    from planner import fit_e2e
    ids = list(meas_ms)
    base = pd.DataFrame({"id": ids, "ttft_s": [pred_s[i] for i in ids], "tpot_s": 0.01,
                         "silicon_ttft_ms": [meas_ms[i] for i in ids], "silicon_tpot_ms": 10.0})
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["request_overhead_s"] = zero.assign(ttft=1.0)
    light = pd.DataFrame({"ids": [s + lo for s, lo in light_ids], "ids_short": [s for s, _ in light_ids],
                          "ids_long": [lo for _, lo in light_ids]})
    return fit_e2e.Sensitivity(base, slopes, {**dict.fromkeys(fit_e2e.PARAMS, 0.0), "request_overhead_s": start},
                               light)


def test_the_request_cost_is_the_level_the_light_load_ttft_misses_not_the_queueing_of_busy_runs():
    from planner import fit_e2e
    # light-load runs a1 (100 ms measured, 80 simulated) and a8 (400 ms, 370): relative gaps 0.2 and 0.075 on
    # slopes 1 / 0.1 = 10 and 1 / 0.4 = 2.5 per s of cost: (10 x 0.2 + 2.5 x 0.075) / (10^2 + 2.5^2)
    # = 2.1875 / 106.25 = 20.6 ms. The busy run h (1,000 ms measured, 500 simulated: queueing the simulation
    # misses) would pull a joint fit to the 50 ms bound; it does not decide the request cost
    meas = {"a1": 100.0, "a8": 400.0, "h": 1000.0}
    pred = {"a1": 0.080, "a8": 0.370, "h": 0.500}
    s = _request_sensitivity(meas, pred, [(("a1",), ("a8",))])
    want = 2.1875 / 106.25
    assert fit_e2e.request_cost(s) == pytest.approx(want, rel=1e-9)
    assert fit_e2e.fit(s)["request_overhead_s"] == pytest.approx(want, rel=1e-9)
    # from a start of 10 ms the simulation was run at 10 ms: the same step on top of it
    s10 = _request_sensitivity(meas, pred, [(("a1",), ("a8",))], start=0.010)
    assert fit_e2e.request_cost(s10) == pytest.approx(0.010 + want, rel=1e-9)
    # a fold without the light-load runs has no level to read: the joint fit decides
    assert fit_e2e.request_cost(s, pd.Index(["h"])) is None
    # a simulation already slower than the light runs: 0, not a negative cost; far faster: the 50 ms bound
    slow = _request_sensitivity({**meas, "a1": 50.0, "a8": 300.0}, pred, [(("a1",), ("a8",))])
    assert fit_e2e.request_cost(slow) == 0.0
    fast = _request_sensitivity({**meas, "a1": 900.0, "a8": 1900.0}, pred, [(("a1",), ("a8",))])
    assert fit_e2e.request_cost(fast) == fit_e2e.UPPER["request_overhead_s"]


def test_vllm_prefill_grows_faster_than_the_operator_tables_and_tensorrt_llm_s_does_not():
    # the published runs at four clients (profiles/reference): vLLM's mean TTFT grows 1.22-1.47x (Llama-3.1-70B
    # fp8) as fast with the prompt (1,024 -> 8,192 stated, 921.5 -> 7,372.5 tokens on average as InferenceX
    # draws them) as the tables' prefill of one prompt, gpt-oss-120b 1.05-1.50x on the Marlin experts its
    # runs used (it was 2.0-2.4x on the Triton kernel AIC timed); TensorRT-LLM's Llama-3.1-70B 0.98-1.18x
    # (benchmarks/prefill_slope.py prints the table)
    g = v.light_load_growth(v.rows(("vllm",)))
    ratio = g["measured_growth_s"] / g["tables_growth_s"]
    assert len(g) >= 10 and set(g["model"]) == {"Llama-3.1-70B", "gpt-oss-120b"}
    assert ratio[g["model"] == "Llama-3.1-70B"].between(1.2, 1.5).all()
    assert ratio[g["model"] == "gpt-oss-120b"].between(1.0, 1.55).all()
    t = v.light_load_growth(v.rows(("trtllm",)))
    llama = t[t["model"] == "Llama-3.1-70B"]
    r = llama["measured_growth_s"] / llama["tables_growth_s"]
    assert len(llama) == 4 and r.between(0.95, 1.2).all()


def test_the_all_reduce_wait_is_a_share_of_the_decode_work_at_the_slowest_of_tp_ranks():
    # Llama-3.1-8B on H100 on the measured operator tables, ranks spread 0.1 of the decode work before each
    # all-reduce: the slowest of two arrives 0.1 / sqrt(pi) = 0.05642 of it after the mean rank, summed over
    # a pass's all-reduces 5.642 % of the decode tokens' measured pass; of four 0.1 x 1.02938 = 10.29 %; at
    # TP 1 there is no all-reduce. A pass of decodes and a prompt chunk waits on its decodes' share alone
    # (the same 5.642 % of the 4-sequence decode pass), a pass without decodes not at all; prefill() of
    # 20,000 tokens in 8,192-token passes (3 passes) with 4 decodes riding waits 3 times that (E max of four
    # normals is integrated numerically, so to 1e-5)
    for tp, share in ((1, 0.0), (2, 0.1 / np.sqrt(np.pi)), (4, 0.1 * 1.02938)):
        p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(tp=tp))
        q = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=0.0, allreduce_spread=0.1)
        base = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=0.0, allreduce_spread=0.0)
        ops = base.timing.ops
        assert ops is not None

        def extra(*args, q=q, base=base):
            return float(q.timing.step(*args)["time_s"]) - float(base.timing.step(*args)["time_s"])

        assert extra(16, 1000) == pytest.approx(share * float(ops.step_s(16, 1000)), rel=1e-5)
        assert extra(4, 500, 1000, 1000) == pytest.approx(share * float(ops.step_s(4, 500)), rel=1e-5)
        assert extra(0, 0, 1000, 1000) == 0.0
        if tp == 2:
            assert 0.0002 < share * float(ops.step_s(16, 1000)) < 0.002  # 5.6 % of a few-ms decode pass
            assert p.memory.dep.mnbt == 8192
            pre = float(q.timing.prefill(1, 20000, 4, 500)["time_s"]) - float(base.timing.prefill(1, 20000, 4, 500)["time_s"])
            assert pre == pytest.approx(3 * share * float(ops.step_s(4, 500)), rel=1e-5)
            assert float(q.timing.prefill(1, 20000)["time_s"]) == float(base.timing.prefill(1, 20000)["time_s"])
            assert q.scheduler.allreduce_spread == 0.1


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
    # two runs at TP > 1: TPOT rises 10 ms per unit of the ranks' spread, TTFT 100 ms. Measured TPOT =
    # predicted + 0.010 x 0.08 = +0.8 ms; measured TTFT is 30 % below the prediction (a gap of its own). A
    # joint fit would hold the spread at 0 to spare TTFT; fitted on TPOT it is 0.08
    ids = ["r1", "r2"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2], "tpot_s": [0.010, 0.020]})
    base["silicon_tpot_ms"] = (base["tpot_s"] + 0.010 * 0.08) * 1e3
    base["silicon_ttft_ms"] = base["ttft_s"] * 0.7 * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["allreduce_spread"] = zero.assign(ttft=0.1, tpot=0.010)
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    assert fit_e2e.fit(s)["allreduce_spread"] == pytest.approx(0.08)


def test_runs_missed_by_more_than_2x_do_not_decide_the_all_reduce_cost():
    from planner import fit_e2e
    # as above (TPOT + 0.010 x 0.08 measured on r1, r2), plus r3 whose TPOT is predicted 5x too high (a
    # 512-client run): its -400 % would pull the spread to 0; it is left out of this fit
    ids = ["r1", "r2", "r3"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2, 0.3], "tpot_s": [0.010, 0.020, 0.050]})
    base["silicon_tpot_ms"] = (base["tpot_s"] + 0.010 * 0.08) * 1e3
    base.loc[2, "silicon_tpot_ms"] = 10.0
    base["silicon_ttft_ms"] = base["ttft_s"] * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["allreduce_spread"] = zero.assign(tpot=0.010)
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    assert fit_e2e.fit(s)["allreduce_spread"] == pytest.approx(0.08)


def test_an_engine_whose_fit_leaves_the_return_gap_out_gets_0():
    from planner import fit_e2e
    # two runs whose TTFT is 20 % above the prediction, and only the return gap moves it (10 s of TTFT per s of
    # gap): free, least squares on (0.2 - 10 x / 0.1)^2 + (0.2 - 10 x / 0.2)^2 gives x = 0.0024 s (2.4 ms);
    # held out of the fit (fit_e2e.NOT_FITTED: SGLang and TensorRT-LLM) it stays 0, and the other costs, whose
    # slopes are all 0, stay 0 with it
    ids = ["r1", "r2"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2], "tpot_s": [0.010, 0.020]})
    base["silicon_ttft_ms"] = base["ttft_s"] * 1.2 * 1e3
    base["silicon_tpot_ms"] = base["tpot_s"] * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["return_gap_s"] = zero.assign(ttft=10.0)
    start = dict.fromkeys(fit_e2e.PARAMS, 0.0)
    # d(sum)/dx = 0: x = (0.2 x 100 + 0.2 x 50) / (100^2 + 50^2) = 30 / 12,500 = 0.0024
    assert fit_e2e.fit(fit_e2e.Sensitivity(base, slopes, start, None))["return_gap_s"] == pytest.approx(0.0024)
    held = fit_e2e.fit(fit_e2e.Sensitivity(base, slopes, start, None, ("return_gap_s",)))
    assert held["return_gap_s"] == 0.0
    assert {e for e, costs in fit_e2e.NOT_FITTED.items() if "return_gap_s" in costs} == {"sglang", "trtllm"}


def test_the_per_pass_cost_is_fitted_on_tpot_alone_and_kept():
    from planner import fit_e2e
    # r1, r2 ran with synchronous scheduling: each pass pays the cost, TPOT rises 1 ms per ms of it (one pass per
    # token), TTFT 3 ms (three passes); r3 ran with async scheduling, where no pass pays it (slope 0). Measured
    # TPOT = predicted + 1.5 ms on r1 and r2, exact on r3, and every measured TTFT is 40 % above the prediction,
    # a gap of its own (queueing) that a joint fit would fill with the per-pass cost (its bound, 20 ms): on TPOT
    # alone it is 1.5 ms, and the end-to-end fit keeps it
    ids = ["r1", "r2", "r3"]
    base = pd.DataFrame({"id": ids, "ttft_s": [0.1, 0.2, 0.3], "tpot_s": [0.010, 0.020, 0.030]})
    base["silicon_tpot_ms"] = (base["tpot_s"] + [0.0015, 0.0015, 0.0]) * 1e3
    base["silicon_ttft_ms"] = base["ttft_s"] * 1.4 * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["step_overhead_s"] = pd.DataFrame({"ttft": [3.0, 3.0, 0.0], "tpot": [1.0, 1.0, 0.0]}, index=ids)
    s = fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None)
    assert fit_e2e.fit(s)["step_overhead_s"] == pytest.approx(0.0015)


def test_vllm_pays_the_per_pass_cost_only_without_async_scheduling():
    from planner import api
    from planner.memory import Deployment
    # vLLM's scheduler runs a step ahead of the GPU from 0.14.0 (async scheduling on by default,
    # profiles/engines/vllm.json), not in 0.12.0; --async-scheduling / --no-async-scheduling override it.
    # With a per-pass cost of 2 ms, a decode pass of 8 sequences at 1,000 tokens takes exactly 2 ms longer where
    # the scheduler runs between passes, and the same where it runs ahead
    default = {"0.12.0": False, "0.14.0": True, "0.18.0": True}

    def step(version, on=None):
        p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(server_version=version, async_scheduling=on))
        assert p.scheduler.async_scheduling is (default[version] if on is None else on)
        p = api.with_engine_costs(p, 0.002, p.scheduler.request_overhead_s, p.scheduler.eager_layer_overhead_s)
        return float(p.timing.step(8, 1000.0)["time_s"])

    assert step("0.12.0") - step("0.14.0") == pytest.approx(0.002, abs=1e-12)
    assert step("0.12.0", on=True) == pytest.approx(step("0.14.0"), abs=1e-12)
    assert step("0.18.0", on=False) - step("0.18.0") == pytest.approx(0.002, abs=1e-12)
    # the headline says which: the synchronous scheduler and what each pass waits for it
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(server_version="0.12.0"))
    from planner.planning import engine_label
    assert engine_label(p).startswith("vLLM 0.12.0 (synchronous scheduling, ")
    assert "synchronous" not in engine_label(api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment()))


def test_async_scheduling_follows_vllms_rules_for_the_release_and_pipeline_parallelism():
    from planner import api
    from planner.errors import PlannerInputError
    from planner.memory import Deployment
    # on by default from 0.14.0, but turned off with pipeline parallelism until 0.17.0 (vllm/config/vllm.py, PR #32618)
    def on(version, pp=1):
        return api.build_plan("Llama-3.1-70B", "H100-SXM", Deployment(server_version=version, tp=4, pp=pp,
                                                                      weights="fp8")).scheduler.async_scheduling
    assert on("0.14.0") and not on("0.14.0", pp=2) and on("0.18.0", pp=2) and not on("0.12.0")
    # asked for where vLLM has no such switch (before 0.10.0) or refuses it (pp > 1 before 0.17.0): refused
    for version, pp in (("0.9.2", 1), ("0.14.0", 2)):
        with pytest.raises(PlannerInputError) as e:
            api.build_plan("Llama-3.1-70B", "H100-SXM", Deployment(server_version=version, tp=4, pp=pp, weights="fp8",
                                                                   async_scheduling=True))
        assert e.value.field == "async_scheduling"
    # the start-up rules' source names the release alone; the scheduler's names the synchronous scheduling
    from planner.request import build
    res = api.plan_request(build("Llama-3.1-8B", "H100-SXM", 8, 1000, 200, server_version="0.12.0"))
    start = res.source("kv_budget_bytes_per_gpu")
    assert start.startswith("vLLM 0.12.0 start-up rules") and "synchronous" in res.source("ttft_s")


def test_async_scheduling_is_vllms_setting_alone():
    from planner.errors import PlannerInputError
    from planner.memory import Deployment
    for server in ("sglang", "trtllm"):
        with pytest.raises(PlannerInputError) as e:
            Deployment(server=server, async_scheduling=True)
        assert e.value.field == "async_scheduling" and server in str(e.value)
    with pytest.raises(PlannerInputError) as e:
        Deployment(async_scheduling="yes")
    assert e.value.field == "async_scheduling"
    with pytest.raises(PlannerInputError) as e:  # HF generate has no server
        Deployment(engine="transformers", async_scheduling=False)
    assert e.value.field == "async_scheduling" and "transformers" in str(e.value)


def test_the_published_runs_are_predicted_with_the_scheduling_they_ran_with():
    from planner import profiles
    from planner import validate_e2e as v
    # InferenceX's vLLM launch configs set async-scheduling: true; the gap-analysis rows (vLLM 0.12.0 through
    # aiconfigurator's generator, whose 0.12.0 template writes no such flag) keep the release's default, off
    d = v.rows(("vllm",))
    pipe = d[d["source"] == "aic-pipeline"].iloc[0]
    gap = d[d["source"] == "gap-analysis"].iloc[0]
    assert v.deployment(pipe, profiles.load_model(pipe.model), "inferencex").async_scheduling is True
    dep = v.deployment(gap, profiles.load_model(gap.model), v.flags_for(gap.source, gap.backend))
    assert dep.async_scheduling is None and gap.version == "0.12.0"
    table = profiles.engine_table("vllm")
    assert table.resolve("0.12.0")[0]["async_scheduling"] is False
    assert table.resolve("0.14.0")[0]["async_scheduling"] is True


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


def test_tensorrt_llm_holds_a_context_batch_for_its_batch_wait_steps():
    # TensorRT-LLM's PyExecutor._waiting_requests: while requests decode, new context requests wait until
    # batch_wait_timeout_iters steps have passed or their tokens + the decodes reach
    # batch_wait_max_tokens_ratio x max_num_tokens. Two clients, 1,024-token prompts: the first requests
    # arrive together on an idle engine (nothing decodes: no wait); client 2's next requests arrive while
    # client 1 decodes 2,000 tokens alone, so each waits 20 decode steps of batch 1 (7.02 ms each on H100
    # at ~1,200 tokens of context): 20 x 7.02 = 140.4 ms more than without the wait
    from dataclasses import replace
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(server="trtllm", batch_wait_timeout_iters=20,
                                                              batch_wait_max_tokens_ratio=0.9))
    assert (p.scheduler.batch_wait_iters, p.scheduler.batch_wait_tokens) == (20, 0.9 * p.memory.dep.mnbt)
    prompts, outputs = np.full(6, 1024), np.array([2000, 100, 100, 100, 100, 100])

    def ttft(sched):
        return simulate(p.timing, 0, prompts, outputs, p.memory.kv_budget_bytes(), profile=sched, concurrency=2,
                        max_num_seqs=sched.max_num_seqs, measure="all").ttft_s

    held, free = ttft(p.scheduler), ttft(replace(p.scheduler, batch_wait_iters=0))
    step = float(p.timing.step(1, 1200)["time_s"])
    np.testing.assert_allclose(held[:2], free[:2])  # the first wave: nothing decoding, nothing held
    np.testing.assert_allclose(held[2:] - free[2:], 20 * step, rtol=0.01)
    # a threshold the waiting prompt alone reaches (0.1 x 8,192 = 819 tokens < 1,024 + 1): no wait
    low = replace(p.scheduler, batch_wait_tokens=0.1 * p.memory.dep.mnbt)
    np.testing.assert_allclose(ttft(low), free)


@pytest.mark.parametrize("kw, field", [
    ({"batch_wait_timeout_iters": -1}, "batch_wait_timeout_iters"),
    ({"batch_wait_timeout_iters": 2.5}, "batch_wait_timeout_iters"),
    ({"batch_wait_max_tokens_ratio": 1.5}, "batch_wait_max_tokens_ratio"),
])
def test_a_bad_batch_wait_names_its_field(kw, field):
    with pytest.raises(PlannerInputError) as e:
        Deployment(server="trtllm", **kw)
    assert e.value.field == field


def test_inferencex_s_tensorrt_llm_llama_waits_at_1k_1k_below_tp_8_only():
    # 70b_fp8_h200_trt_slurm.sh @ac1998a: batch_wait_timeout_iters 20 and batch_wait_max_tokens_ratio 0.9 when
    # ISL = OSL = 1024 and TP < 8
    llama = profiles.load_model("Llama-3.1-70B")
    d = v.deployment(_row("trtllm", 16, 1024, osl=1024), llama, "inferencex")
    assert (d.batch_wait_timeout_iters, d.batch_wait_max_tokens_ratio) == (20, 0.9)
    assert v.deployment(_row("trtllm", 16, 1024, osl=8192), llama, "inferencex").batch_wait_timeout_iters == 0
    tp8 = _row("trtllm", 16, 1024, osl=1024)
    tp8["tp_size"] = 8.0
    assert v.deployment(tp8, llama, "inferencex").batch_wait_timeout_iters == 0


def test_the_batch_wait_travels_in_a_plan_s_parameters_and_its_command():
    from planner import commands
    from planner import requestparams as rp
    req = rp.from_params({"model": "Llama-3.1-8B", "gpu": "H100-SXM", "batch": "8", "prompt": "1024", "output": "128",
                          "server": "trtllm", "batch_wait_timeout_iters": "20", "batch_wait_max_tokens_ratio": "0.9"})
    assert (req.deployment.batch_wait_timeout_iters, req.deployment.batch_wait_max_tokens_ratio) == (20, 0.9)
    assert rp.to_params(req)["batch_wait_timeout_iters"] == "20"
    c = commands.commands("Llama-3.1-8B", "H100-SXM", req.deployment, 1024, 128, 8)
    assert any("batch_wait_timeout_iters: 20" in n and "batch_wait_max_tokens_ratio: 0.9" in n for n in c.serve.notes)
    # not set: not written, no note
    plain = rp.from_params({"model": "Llama-3.1-8B", "gpu": "H100-SXM", "batch": "8", "prompt": "1024", "output": "128",
                            "server": "trtllm"})
    assert "batch_wait_timeout_iters" not in rp.to_params(plain)
    assert not any("batch wait" in n for n in commands.commands("Llama-3.1-8B", "H100-SXM", plain.deployment, 1024, 128,
                                                                 8).serve.notes)


def test_spread_lengths_stay_within_ten_percent_of_the_stated_ones():
    from planner.simulate import capped_mean, draw_lengths
    x = draw_lengths(1000, "spread", 4000, np.random.default_rng(0))
    assert x.min() >= 900 and x.max() <= 1100 and abs(x.mean() - 1000) < 5 and len(set(x)) > 150
    # mean 10: the whole numbers 9, 10, 11; capped at 10: (9 + 10 + 10) / 3 = 9.667; at 8: 8; at 11: 10
    assert capped_mean(10, "spread", 10) == pytest.approx(29 / 3)
    assert capped_mean(10, "spread", 8) == 8.0 and capped_mean(10, "spread", 11) == 10.0
    assert set(draw_lengths(1, "spread", 10, np.random.default_rng(0))) == {1}


def test_the_plan_headline_is_near_what_inferencex_measured():
    # InferenceX (profiles/reference, 2026_04_06 Llama-3.1-70B fp8 on 2 H200, 1k/1k, 16 clients): mean TTFT
    # 189.8 ms, TPOT 15.7 ms. The plan (vLLM's defaults, lengths within 10 %) lands within 25 % and 10 %; with
    # every length fixed the 16 clients stay in two lockstep groups of 8 prompts a pass and the TTFT triples
    p = api.plan("Llama-3.1-70B", "H200", 16, 1024, 1024, tp=2, weights="fp8", kv_dtype="fp8")
    assert p["ttft_s"] == pytest.approx(0.1898, rel=0.25) and p["tpot_s"] == pytest.approx(0.0157, rel=0.10)
    assert "each within 10 %" in p["latency_source"]
    # at 64 clients the first wave (64 prompts sent together: 64 k tokens, eight 8,192-token chunks queued behind
    # each other) lifts the mean above its p90, and the source says why; at 16 (2 chunks) the clients that come back
    # within the return gap of each other queue later on too, and the p90 is above the mean
    many = api.plan("Llama-3.1-70B", "H200", 64, 1024, 1024, tp=2, weights="fp8", kv_dtype="fp8")
    assert many["ttft_s"] > many["ttft_p90_s"] and "first prompts, sent together" in many["latency_source"]
    assert p["ttft_s"] <= p["ttft_p90_s"] and "first prompts" not in p["latency_source"]
    one = api.plan("Llama-3.1-70B", "H200", 1, 1024, 1024, tp=2, weights="fp8", kv_dtype="fp8")
    assert one["ttft_s"] <= one["ttft_p90_s"] and "first prompts" not in one["latency_source"]
    plan = api.build_plan("Llama-3.1-70B", "H200", Deployment(weights="fp8", kv_dtype="fp8", tp=2))
    from planner.traffic import serve
    fixed = serve(plan, Traffic(1024, 1024, concurrency=16))
    assert float(np.mean(fixed.ttft_s)) > 2.5 * 0.1898


def test_the_fit_is_iterated_to_its_fixed_point(monkeypatch):
    from types import SimpleNamespace

    from planner import fit_e2e
    # a fit that moves every cost halfway from where the runs were simulated to 0.1 of its bound: from 0 the
    # simulations stand at 0.1 U x (0, 1/2, 3/4, 7/8), the fit at 7/8 gives 15/16, 1/16 x 0.1 U = 0.00625 U from
    # it, within TOLERANCE (0.01 U): four simulations, converged. Towards the bound itself the steps are ten times
    # larger: the simulations stand at 1 - 2^-n U, the seventh's step 2^-7 U = 0.0078 U is the first within it
    # (converged at 127/128 U); with the limit at six the loop stops there unconverged, U / 64 = 0.0156 U short
    def run(goal):
        monkeypatch.setattr(fit_e2e, "sensitivity", lambda d, e, start, light=None: SimpleNamespace(start=start, light=None))
        monkeypatch.setattr(fit_e2e, "fit", lambda s: {k: (s.start[k] + goal * fit_e2e.UPPER[k]) / 2 for k in fit_e2e.PARAMS})
        return fit_e2e.fixed_point(None, "vllm", dict.fromkeys(fit_e2e.PARAMS, 0.0))

    s, costs, path = run(0.1)
    u = fit_e2e.UPPER["request_overhead_s"]
    assert [p["request_overhead_s"] / u for p in path] == pytest.approx([0, 0.05, 0.075, 0.0875])
    assert costs["request_overhead_s"] / u == pytest.approx(0.09375) and fit_e2e.converged(costs, s.start)
    s, costs, path = run(1.0)
    assert len(path) == 7 and fit_e2e.converged(costs, s.start)
    assert costs["request_overhead_s"] / u == pytest.approx(127 / 128)
    monkeypatch.setattr(fit_e2e, "MAX_SIMULATIONS", 6)
    s, costs, path = run(1.0)
    assert len(path) == 6 and not fit_e2e.converged(costs, s.start)
    assert costs["request_overhead_s"] / u == pytest.approx(63 / 64)


def test_a_cost_whose_fitted_step_turns_back_takes_half_its_step(monkeypatch):
    from types import SimpleNamespace

    from planner import fit_e2e
    # a fit that answers the bound U below 0.5 U and 0 above it (a two-cycle undamped): from 0 the simulations
    # stand at 0, U (step +U), 0.5 U (step -U turned back: share 1/2), 0.625 U (+0.5 U, turned: 1/4), 0.546875 U
    # (-0.625 U, turned: 1/8), 0.46484375 U (-0.546875 U, same way: 1/8 x 1.2 = 0.15), 0.50498046875 U
    # (+0.53515625 U, turned: 0.075), 0.486043701171875 U (-0.50498046875 U, turned: 0.0375); the eighth fit
    # (+0.513956298828125 U, turned: 0.01875) ends at 0.4957 U, closing in on the point where the fit turns
    monkeypatch.setattr(fit_e2e, "sensitivity", lambda d, e, start, light=None: SimpleNamespace(start=start, light=None))
    monkeypatch.setattr(fit_e2e, "fit", lambda s: {k: 0.0 if s.start[k] > 0.5 * fit_e2e.UPPER[k] else fit_e2e.UPPER[k]
                                                   for k in fit_e2e.PARAMS})
    s, costs, path = fit_e2e.fixed_point(None, "vllm", dict.fromkeys(fit_e2e.PARAMS, 0.0))
    u = fit_e2e.UPPER["return_gap_s"]
    assert [p["return_gap_s"] / u for p in path] == pytest.approx(
        [0, 1, 0.5, 0.625, 0.546875, 0.46484375, 0.50498046875, 0.486043701171875])
    assert costs["return_gap_s"] / u == pytest.approx(0.486043701171875 + 0.513956298828125 * 0.01875)


def test_a_cost_whose_step_keeps_its_way_takes_back_its_whole_step(monkeypatch):
    from types import SimpleNamespace

    from planner import fit_e2e
    # the fit answers U when the cost is at 0 (a first step that overshoots) and 0.3 U anywhere else: from 0 the
    # simulations stand at 0, U (step +U), 0.65 U (-0.7 U turned: share 1/2), 0.44 U (-0.35 U, same way: 0.6),
    # 0.3392 U (-0.14 U: 0.72), 0.3053312 U (-0.0392 U: 0.864), and the sixth fit's step (-0.0053312 U, share
    # back to 1) lands on 0.3 U within TOLERANCE: converged after six simulations. With halving alone the share
    # would stay at 1/2 (0.475, 0.3875, 0.34375 U, the sixth fit still moving 0.022 U: not converged at six)
    monkeypatch.setattr(fit_e2e, "sensitivity", lambda d, e, start, light=None: SimpleNamespace(start=start, light=None))
    monkeypatch.setattr(fit_e2e, "fit", lambda s: {k: fit_e2e.UPPER[k] if s.start[k] == 0 else 0.3 * fit_e2e.UPPER[k]
                                                   for k in fit_e2e.PARAMS})
    s, costs, path = fit_e2e.fixed_point(None, "vllm", dict.fromkeys(fit_e2e.PARAMS, 0.0))
    u = fit_e2e.UPPER["step_overhead_s"]
    assert [p["step_overhead_s"] / u for p in path] == pytest.approx([0, 1, 0.65, 0.44, 0.3392, 0.3053312])
    assert costs["step_overhead_s"] / u == pytest.approx(0.3) and fit_e2e.converged(costs, s.start)


def test_every_decoding_sequence_of_a_pass_pays_the_per_sequence_cost():
    # 20 us per decoding sequence: a pass of 100 decodes takes 100 x 20 us = 2 ms longer, on the measured tables
    # (Llama-3.1-8B on H100) and on the roofline (MI300X has no tables) alike; a pass of 4 decodes and a
    # 1,000-token prompt chunk 4 x 20 us = 80 us (the chunk streams nothing); a prefill-only pass nothing. The
    # simulation's per-pass time (step_time_s) equals step()'s
    for gpu, tables in (("H100-SXM", True), ("MI300X", False)):
        p = api.build_plan("Llama-3.1-8B", gpu, Deployment(tp=1))
        assert (p.timing.ops is not None) is tables
        q = api.with_engine_costs(p, 0.0, 0.0, 0.0, sequence_step_s=20e-6)
        base = api.with_engine_costs(p, 0.0, 0.0, 0.0, sequence_step_s=0.0)
        assert q.scheduler.sequence_step_s == 20e-6 and q.timing.eff.sequence_step_s == 20e-6

        def extra(*args, q=q, base=base):
            return float(q.timing.step(*args)["time_s"]) - float(base.timing.step(*args)["time_s"])

        assert extra(100, 1000) == pytest.approx(0.002, rel=1e-9)
        assert extra(4, 500, 1000, 1000) == pytest.approx(80e-6, rel=1e-9)
        assert extra(0, 0, 1000, 1000) == 0.0
        for args in ((100, 1000), (4, 500, 1000, 1000)):
            assert q.timing.step_time_s(*args) == pytest.approx(float(q.timing.step(*args)["time_s"]), rel=1e-12)


def _batch_sensitivity(batches, gap_per_seq, frozen=()):
    """Runs at ``batches`` clients whose measured TPOT is the prediction plus ``gap_per_seq`` x the batch and
    whose TTFT is 40 % above it; one second of per-pass cost adds 1 s to TPOT (one pass a token) and 3 s to TTFT,
    one second per sequence adds the batch to TPOT."""
    from planner import fit_e2e
    ids = [f"r{b}" for b in batches]
    b = np.asarray(batches, float)
    base = pd.DataFrame({"id": ids, "ttft_s": 0.1 * np.ones(len(b)), "tpot_s": 0.02 + b * 1e-4})
    base["silicon_tpot_ms"] = (base["tpot_s"] + b * gap_per_seq) * 1e3
    base["silicon_ttft_ms"] = base["ttft_s"] * 1.4 * 1e3
    zero = pd.DataFrame({"ttft": 0.0, "tpot": 0.0}, index=ids)
    slopes = {k: zero for k in fit_e2e.PARAMS}
    slopes["step_overhead_s"] = zero.assign(ttft=3.0, tpot=1.0)
    slopes["sequence_step_s"] = zero.assign(tpot=b)
    return fit_e2e.Sensitivity(base, slopes, dict.fromkeys(fit_e2e.PARAMS, 0.0), None, tuple(frozen))


def test_the_per_sequence_cost_is_fitted_on_tpot_alone_apart_from_the_per_pass_cost():
    from planner import fit_e2e
    # TPOT short by 30 us x the batch at 64, 256 and 512 clients (1.92, 7.68, 15.36 ms): the per-sequence cost is
    # 30 us and the per-pass cost, which would have to be the same at every batch, 0; the TTFT's 40 % (queueing,
    # not a pass) moves neither
    costs = fit_e2e.fit(_batch_sensitivity([64, 256, 512], 30e-6))
    assert costs["sequence_step_s"] == pytest.approx(30e-6, rel=1e-9)
    assert costs["step_overhead_s"] == pytest.approx(0.0, abs=1e-12)
    # held at 0 (vLLM: fit_e2e.NOT_FITTED), the per-pass cost takes the least-squares constant of the relative
    # gaps g / m (g = 1.92, 7.68, 15.36 ms; measured m = 28.32, 53.28, 86.56 ms): sum(g / m^2) / sum(1 / m^2) =
    # (2.3939 + 2.7054 + 2.0501) / (1246.76 + 352.267 + 133.466) per ms = 7.1494 / 1732.49 per ms = 4.1266e-3 s
    held = fit_e2e.fit(_batch_sensitivity([64, 256, 512], 30e-6, ("sequence_step_s",)))
    assert held["sequence_step_s"] == 0.0
    assert held["step_overhead_s"] == pytest.approx(4.1266e-3, rel=2e-4)
    assert "sequence_step_s" in fit_e2e.NOT_FITTED["vllm"]


def test_vllms_table_holds_the_per_sequence_cost_at_0_and_says_why():
    from planner import profiles
    table = profiles.engine_table("vllm")
    assert table.constant("sequence_step_s") == 0.0 and "11.5 %" in table.constant_source("sequence_step_s")
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(tp=1))
    assert p.scheduler.engine == "vllm" and p.scheduler.sequence_step_s == 0.0


def test_the_decodes_riding_with_a_prompt_pay_the_per_sequence_cost_in_every_chunk():
    # the mean-value prefill of one 20,000-token prompt in 8,192-token passes (3 passes) with 100 decodes riding:
    # every pass pays 100 x 20 us = 2 ms, 3 x 2 ms = 6 ms in all; alone (no decodes) nothing
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(tp=1))
    q = api.with_engine_costs(p, 0.0, 0.0, 0.0, sequence_step_s=20e-6)
    base = api.with_engine_costs(p, 0.0, 0.0, 0.0, sequence_step_s=0.0)
    assert p.timing.dep.mnbt == 8192

    def extra(*args):
        return float(q.timing.prefill(*args)["time_s"]) - float(base.timing.prefill(*args)["time_s"])

    assert extra(1, 20000, 100, 500) == pytest.approx(0.006, rel=1e-9)
    assert extra(1, 20000) == 0.0
