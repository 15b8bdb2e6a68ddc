"""trtllm-bench's offline throughput cells (planner/validate_throughput.py, profiles/validation/trtllm-perf-overview.csv)."""

import math

import pytest

from planner import profiles
from planner import validate_throughput as vt
from planner.errors import PlannerInputError


def test_bench_settings_llama70b_nvfp4_b200_by_hand():
    # tuning.py calc_engine_setting: KV GiB a token = 2 x 80 layers x max(1, 8) heads x 128 x 1 B / 2^30 = 1.52588e-4;
    # engine = 70,553,706,496 params x 0.5 B / 2^30 = 32.854 GiB; device (NVML) = 192,265,846,784 B / 2^30 = 179.062
    # GiB; cache = (179.062 - 32.854) x 0.9 = 131.587 GiB; requests = 131.587 / (1.52588e-4 x 2048) = 421.1
    # finetune_setting: 256 <= 421.1 < 1024 -> 128 x ceil(421.1 / 128) = 512; tokens 421.1 x 2 = 842 -> at least 2048;
    # chunked prefill off: max(2048, 1024 + 512) = 2048
    assert vt.bench_settings("Llama-3.1-70B", "B200", "nvfp4", "fp8", 1, 1024, 1024) == (512, 2048)


def test_bench_settings_llama70b_fp8_h200_tp2_long_prompt_by_hand():
    # per token 2 x 80 x max(2, 8) x 128 x 1 B = 163,840 B = 1.52588e-4 GiB; engine 70,553,706,496 B / 2^30 = 65.708 GiB;
    # free = 2 x 150,754,820,096 / 2^30 (NVML) - 65.708 = 215.091 GiB; x 0.9 = 193.582; requests = 193.582 /
    # (1.52588e-4 x 9216) = 137.7 -> below 256: max(64, 32 x ceil(137.7 / 32)) = 160; tokens 137.7 x 9 = 1,239 -> 2048;
    # chunked prefill off: max(2048, 8192 + 160) = 8352
    assert vt.bench_settings("Llama-3.1-70B", "H200", "fp8-tensor", "fp8", 2, 8192, 1024) == (160, 8352)


def test_bench_settings_outside_the_heuristic_take_the_engine_defaults():
    # MXFP4 is not among build.py's heuristic formats: the LLM API's max_batch_size 2048 / max_num_tokens 8192,
    # then 32,768 + 2,048 tokens so a whole prompt fits one step (chunked prefill off)
    sched = profiles.engine_table("trtllm").resolve(None)[0]["scheduler"]
    assert (sched["max_num_seqs"], sched["max_num_batched_tokens"]) == (2048, 8192)
    assert vt.bench_settings("gpt-oss-20b", "H200", "mxfp4", "bf16", 1, 1024, 1024) == (2048, 8192)
    assert vt.bench_settings("gpt-oss-20b", "H200", "mxfp4", "bf16", 1, 32768, 1024) == (2048, 34816)


def test_rounding_steps():
    # batch: below 256 max(64, 32 x ceil(raw / 32)); below 1024 128 x ceil; else 256 x ceil
    assert [vt._round_up(x, vt.BATCH_STEPS) for x in (1, 65, 255.5, 256, 1023, 1024, 3000)] == [64, 96, 256, 256, 1024,
                                                                                                1024, 3072]
    # tokens: below 4096 max(2048, 256 x ceil); below 8192 512 x ceil; else 1024 x ceil
    assert [vt._round_up(x, vt.TOKEN_STEPS) for x in (10, 2049, 4096, 8191, 8192, 32768)] == [2048, 2304, 4096, 8192,
                                                                                              8192, 32768]


def test_carried_cells_name_their_source_and_a_bundled_model():
    d = vt.rows()
    assert len(d) >= 50 and d["id"].is_unique
    assert d["source_url"].str.contains("/blob/585c756579dc4d01f21fc13c2f604cdb461ac4f0/").all()
    assert set(d["engine"]) == {"trtllm"}
    assert set(d["model"]) <= set(profiles.model_names())
    assert (d["output_tok_s_per_gpu"] > 0).all()
    # the page's request counts by ISL/OSL (its "num_requests" table)
    counts = {(1024, 1024): 3000, (8192, 1024): 1500, (1024, 8192): 1500, (32768, 1024): 1000, (1024, 32768): 1000}
    assert all(counts[(r.isl, r.osl)] == r.num_requests for r in d.itertuples())


def test_predict_one_cell_is_the_simulated_run():
    d = vt.rows()
    row = d[d["id"] == "trtllm-bench-llama-3-1-70b-h100-sxm-tp2-8192x1024"]
    p = vt.predict(row).iloc[0]
    assert p["why"] == ""
    assert (p["max_batch_size"], p["max_num_tokens"]) == vt.bench_settings("Llama-3.1-70B", "H100-SXM", "fp8-tensor",
                                                                            "fp8", 2, 8192, 1024)
    # never more requests at once than the batch limit; output per GPU = all output tokens / run length / 2 GPUs
    assert 0 < p["mean_running"] <= p["max_batch_size"]
    assert math.isfinite(p["predicted_tok_s_per_gpu"]) and p["predicted_tok_s_per_gpu"] > 0
    assert p["error_pct"] == pytest.approx((p["predicted_tok_s_per_gpu"] - 398.0) / 398.0 * 100)
    assert bool(p["tables"])


@pytest.mark.parametrize("model", ["DeepSeek-V3", "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"])
def test_layer_kinds_the_heuristic_sizes_otherwise_are_refused_by_name(model):
    # MLA and Mamba hybrids: tuning.py sizes them differently; a clear refusal, not a division by zero
    with pytest.raises(PlannerInputError) as e:
        vt.bench_settings(model, "B200", "fp8", "fp8", 8, 1024, 1024)
    assert e.value.field == "model" and "max_batch_size" in e.value.fix


def test_no_room_for_one_request_is_refused():
    # Llama-3.1-70B in bf16 (141 GB) on one 80 GB H100: calc_engine_setting raises, so does this
    with pytest.raises(PlannerInputError) as e:
        vt.bench_settings("Llama-3.1-70B", "H100-SXM", "bf16", "bf16", 1, 1024, 1024)
    assert e.value.field == "gpu" and "TP" in e.value.fix


def test_offline_runs_leave_out_the_per_sequence_cost_and_keep_the_others():
    # trtllm-bench neither serves nor streams: the per-sequence cost fitted on served runs is left out, every other
    # fitted cost stays. A pass of 512 decodes then takes 512 x the fitted per-sequence cost less (TensorRT-LLM's
    # is positive, profiles/engines/trtllm.json), a prefill-only pass the same time
    from planner import api
    from planner.memory import Deployment

    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(engine="paged", server="trtllm"))
    seq = p.scheduler.sequence_step_s
    assert seq > 0
    q = vt.offline(p)
    assert q.scheduler.sequence_step_s == 0.0 and q.timing.eff.sequence_step_s == 0.0
    for k in ("step_overhead_s", "request_overhead_s", "eager_layer_overhead_s", "prefill_token_layer_s"):
        assert getattr(q.scheduler, k) == getattr(p.scheduler, k)
    assert p.timing.step_time_s(512, 1000) - q.timing.step_time_s(512, 1000) == pytest.approx(512 * seq, rel=1e-9)
    assert p.timing.step_time_s(0, 0, 4000, 4000) == q.timing.step_time_s(0, 0, 4000, 4000)
