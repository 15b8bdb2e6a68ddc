"""How decoding stops: the max_tokens cap truncates the outputs, and an engine that reserves a request's
KV whole at admission (TensorRT-LLM's GUARANTEED_NO_EVICT) reserves prompt + max_tokens, not the
output the request turns out to have (it cannot know where EOS will come)."""

import numpy as np
import pytest
from synthetic import H100, TABLE
from test_kv_known import LLAMA31_8B

from planner import slo
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.scheduler import SchedulerProfile
from planner.simulate import capped_mean, draw_lengths, simulate
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, build_timing
from planner.traffic import Traffic

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
TM = build_timing(SPEC, H100, Deployment(), TABLE, Efficiency(memory=0.8, compute=0.7), KernelFactor())
WHOLE = SchedulerProfile("trtllm", "1.3.0", token_budget=8192, max_num_seqs=256, reservation="whole_request")
# Llama-3.1-8B, bf16 KV: 2 (K, V) x 32 layers x 8 KV heads x 128 head dim x 2 bytes = 131,072 B per token
PER_TOKEN = 2 * 32 * 8 * 128 * 2
PROMPT, OUTPUT, MAX_TOKENS = 1024, 64, 1024   # every request stops at EOS after 64 tokens, capped at 1,024


def run(cap_bytes, max_tokens, n=40, concurrency=8):
    return simulate(TM, 0, np.full(n, PROMPT), np.full(n, OUTPUT), cap_bytes, profile=WHOLE,
                    concurrency=concurrency, max_tokens=max_tokens, measure="all")


def test_whole_reservation_holds_prompt_plus_max_tokens():
    # a pool of 2 x (1,024 + 1,024) = 4,096 tokens = 4,096 x 131,072 B = 512 MiB (blocks of 16: no rounding)
    cap = 4096 * PER_TOKEN
    assert cap == 512 * 2**20
    capped = run(cap, MAX_TOKENS)
    # each request reserves 2,048 tokens: two fit (4,096 <= 4,096), a third does not
    assert capped.completed == 40 and capped.mean_running <= 2.0 + 1e-9
    # without a cap the reservation is the realised 1,024 + 64 = 1,088 tokens: three fit
    # (3 x 1,088 = 3,264 <= 4,096 < 4 x 1,088 = 4,352), so more run at once and the run is shorter
    uncapped = run(cap, None)
    assert uncapped.mean_running > 2.2
    assert uncapped.duration_s < capped.duration_s


def test_a_pool_below_prompt_plus_max_tokens_admits_nothing():
    # 2,000 tokens of room: 1,024 + 64 = 1,088 fits, 1,024 + 1,024 = 2,048 does not
    cap = 2000 * PER_TOKEN
    assert run(cap, None, n=4, concurrency=1).completed == 4
    with pytest.raises(PlannerInputError, match="kv_capacity"):
        run(cap, MAX_TOKENS, n=4, concurrency=1)


def test_the_cap_truncates_outputs():
    r = simulate(TM, 0, np.full(4, 128), np.full(4, 500), 1e12, concurrency=1, max_tokens=100, measure="all")
    # every output stops at 100 tokens: TPOT is (e2e - TTFT) / 99 over 99 decode steps
    assert r.completed == 4 and r.steps == 4 * 100
    t = Traffic(128, 500, concurrency=4, distribution="exponential", max_tokens=300)
    assert t.lengths()[1].max() == 300


@pytest.mark.parametrize("dist", ["fixed", "uniform", "exponential"])
def test_capped_mean_matches_the_draws(dist):
    draws = np.minimum(draw_lengths(200, dist, 200_000, np.random.default_rng(1)), 150)
    assert capped_mean(200, dist, 150) == pytest.approx(draws.mean(), rel=0.01)
    assert capped_mean(200, dist, None) == 200


def test_capped_mean_by_hand():
    # uniform on 1..7 (mean 4) capped at 3: (1 + 2 + 3 + 4 x 3) / 7 = 18 / 7
    assert capped_mean(4, "uniform", 3) == pytest.approx(18 / 7)
    assert capped_mean(500, "fixed", 300) == 300
    wl = slo.Workload(5, 1000, 500, "exponential", max_tokens=500)
    # 500 x (1 - e^-1) = 316.06 -> 316 tokens for the mean-value model and the cost per token
    assert wl.mean_output_tokens == 316
    with pytest.raises(PlannerInputError, match="max_tokens"):
        slo.Workload(5, 1000, 500, max_tokens=0)
