"""planner.remedies: the single changes that make a plan fit, each planned by the core."""

import pytest

from planner import api, profiles
from planner.remedies import remedies
from planner.request import PlanRequest, build

pytestmark = pytest.mark.skipif(not {"Llama-3.1-8B", "Llama-3.1-70B"} <= set(profiles.model_names())
                                or "H100-SXM" not in profiles.gpus(), reason="needs the bundled models and H100")


def _kinds(rs) -> dict:
    return {r.kind: r for r in rs}


def test_a_plan_that_fits_needs_no_remedy():
    assert remedies(build("Llama-3.1-8B", "H100-SXM", 8, 1024, 256, gpus=1, simulate=False)) == ()


def test_too_large_a_batch_gets_the_largest_batch_that_fits():
    # Llama-3.1-8B, bf16 KV: 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 B = 131,072 B = 128 KiB a token;
    # 8,192 + 1,024 tokens: 9,216 x 128 KiB = 1.125 GiB a sequence. H100-SXM 80 GiB x vLLM's 0.9 = 72.88 GiB
    # usable; bf16 weights 14.96 GiB, overhead 0.20 GiB, activations 1.27 GiB leave 56.45 GiB: 56.45 / 1.125 = 50.2
    # by the total, but vLLM's start-up pool is 54.69 GiB (`capacity`: its sampler warm-up peak 2.26 GiB and CUDA
    # graphs 0.78 GiB come off before the pool is sized): 54.69 / 1.125 = 48.6 -> batch 48 fits; 512 needs 592 GiB.
    req = build("Llama-3.1-8B", "H100-SXM", 512, 8192, 1024, gpus=1, simulate=False)
    got = _kinds(remedies(req))
    assert got["batch"].request.workload.batch == 48 and got["batch"].fits
    assert dict(got["batch"].params) == {"batch": "48"}
    assert not api.plan_request(got["batch"].request.with_workload(batch=49)).fits
    # the longest context at batch 512 is below the 1,024 output tokens alone: no prompt length helps
    assert "context" not in got
    # fp8 KV halves 592 GiB's KV part but is still far over: offered, marked as not fitting
    assert not got["kv"].fits and got["kv"].memory_total_bytes_per_gpu < api.plan_request(req).memory.memory_total_bytes_per_gpu


def test_weights_larger_than_one_gpu_get_more_tp_or_4_bit_weights():
    # Llama-3.1-70B bf16: 70.6e9 params x 2 B = 131.4 GiB, over one H100's 72.88 GiB: no batch or context helps.
    # TP=2: 65.71 GiB weights + 6.25 GiB KV (32 x 1,280 tokens x 320 KiB / 2) + 1.40 activations + 0.70 overhead
    # = 74.06 GiB > 72.88: no. TP=4 halves both again: fits. AWQ 4-bit: ~0.27 of bf16's bytes: fits on one.
    req = build("Llama-3.1-70B", "H100-SXM", 32, 1024, 256, gpus=1, simulate=False)
    got = _kinds(remedies(req))
    assert "batch" not in got and "context" not in got
    assert got["tp"].fits and got["tp"].request.deployment.tp == 4 and got["tp"].request.gpus == 4
    assert dict(got["tp"].params) == {"tp": "4", "gpus": "4"}
    assert got["weights"].fits and got["weights"].request.deployment.weights == "awq-4bit-g128"
    assert not got["kv"].fits


def test_a_remedys_params_applied_to_the_url_give_its_request():
    req = build("Llama-3.1-70B", "H100-SXM", 32, 1024, 256, gpus=1, simulate=False)
    for r in remedies(req):
        assert PlanRequest.from_params({**req.to_params(), **dict(r.params)}) == r.request, r.kind
        assert api.plan_request(r.request).fits == r.fits, r.kind


def test_a_too_long_prompt_gets_the_longest_that_fits():
    # batch 8 at 1,000,000 prompt tokens cannot fit; the core's max_context at batch 8 minus the output is the offer
    req = build("Llama-3.1-8B", "H100-SXM", 8, 1_000_000, 256, gpus=1, simulate=False)
    got = _kinds(remedies(req))
    limit = api.plan_request(req).memory.max_context_tokens
    assert got["context"].request.workload.prompt_tokens == limit - 256 and got["context"].fits
