"""TensorRT-LLM's start-up KV pool (planner/startup.py trtllm_startup): the rule of its KvCacheCreator, derived by
hand, and the published start-up logs of profiles/validation/trtllm-startup.csv."""

import json

import pytest

from planner import api, cli, profiles
from planner import validate_trtllm_pool as vt
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.startup import EngineSettings, trtllm_estimation_tokens, trtllm_startup

GIB = 2**30


def _startup(**kw):
    base = dict(engine="trtllm", weights="fp8", kv_cache_dtype="fp8", free_gpu_memory_fraction=0.8,
                max_num_batched_tokens=23552)
    base.update(kw)
    return trtllm_startup(profiles.load_model("Llama-3.1-8B"), profiles.gpu("H100-SXM"), EngineSettings(**base),
                          profiles.engine_table("trtllm"), profiles.formats())


def test_the_pool_is_the_fraction_of_what_the_profiling_peak_leaves():
    # NVIDIA/TensorRT-LLM#6294: trtllm-bench, Llama-3.1-8B-Instruct-FP8 on an H100, 0.20.0, fraction 0.8,
    # max_num_tokens 23,552: "Allocated 52.51 GiB for max tokens in paged KV cache (860320)".
    m = _startup(version="0.20.0")
    t = {x.name: x.bytes for x in m.terms}
    # device 85,061,827,297.28 B (H100-SXM's CUDA total); weights 9,086,705,664 B (fp8 linear layers, bf16
    # embeddings) + the rotary cache 131,072 x 128 x 2 B = 33,554,432 B -> 9,120,260,096 B
    assert t["weights"] == pytest.approx(9_120_260_096)
    # the forward's widest point: 23,552 tokens x (2 x 4,096 + 3 x 14,336) x 2 B = 2,411,724,800 B
    assert t["activation_peak"] == pytest.approx(2_411_724_800)
    assert t["non_torch"] == pytest.approx(2.4 * GIB, rel=1e-9)
    # (85,061,827,297.28 - 9,120,260,096 - 2,576,980,378 - 2,411,724,800) x 0.8 = 56,762,289,618.6 B = 52.86 GiB
    # (the temporary KV cache is in the peak and added back: it cancels)
    assert m.kv_budget_bytes == pytest.approx(56_762_289_618.6, rel=1e-6)
    # fp8 KV: 32 layers x 8 heads x 128 x 2 (K, V) x 1 B = 65,536 B a token; 866,124 tokens -> 27,067 blocks of 32
    assert m.bytes_per_token == 65_536
    assert (m.num_blocks, m.kv_tokens) == (27_067, 866_144)
    assert m.kv_tokens == pytest.approx(860_320, rel=0.01)  # the log: +0.7 %
    assert m.kv_budget_bytes / GIB == pytest.approx(52.51, rel=0.01)


def test_before_0_20_the_estimation_cache_stays_in_the_peak():
    new, old = _startup(version="0.20.0"), _startup(version="0.19.0")
    # 23,552 tokens in one dummy request (max_seq_len 131,072) + 2 -> 737 blocks of 32 = 23,584 tokens x 65,536 B
    tmp = 23_584 * 65_536
    assert next(x.bytes for x in old.terms if x.name == "estimation_kv_cache") == tmp
    assert new.kv_budget_bytes - old.kv_budget_bytes == pytest.approx(tmp * 0.8)


@pytest.mark.parametrize("tokens, max_seq_len, expected", [
    (8192, 131072, 8224),   # one request of 8,192 + 2 -> 257 blocks
    (8192, 2048, 8352),     # four of 2,047 (+2: 65 blocks each) and one of 4 (+2: 1 block) -> 261 blocks
    (23552, 131072, 23584),  # 23,554 -> 737 blocks
])
def test_estimation_tokens(tokens, max_seq_len, expected):
    assert trtllm_estimation_tokens(tokens, max_seq_len, 32) == expected


def test_the_default_fraction_is_0_9_and_a_given_one_is_said_so():
    m = _startup(free_gpu_memory_fraction=None)
    assert m.setting("free_gpu_memory_fraction") == 0.9
    assert dict(m.settings)["free_gpu_memory_fraction"].source.startswith("default of trtllm")
    assert dict(_startup().settings)["free_gpu_memory_fraction"].source == "given"


def test_a_plan_under_trtllm_uses_its_pool_and_the_whole_device():
    p = api.build_plan("Qwen3-32B", "H100-SXM", Deployment(weights="bf16", kv_dtype="bf16", engine="paged",
                                                            server="trtllm"))
    assert p.startup is not None and p.startup.engine == "trtllm"
    assert p.memory.engine_kv_budget_bytes == p.startup.kv_budget_bytes
    assert p.memory.capacity_bytes == profiles.gpu("H100-SXM").total_memory_bytes  # not x 0.9
    # 61 GiB of weights on an 79.2 GiB device: 0.9 x (79.2 - 61.0 - 2.4 - 1.3) = 13 GiB, more than vLLM's 8 GiB
    vllm = api.build_plan("Qwen3-32B", "H100-SXM", Deployment(weights="bf16", kv_dtype="bf16", engine="paged",
                                                               server="vllm"))
    assert p.startup.kv_budget_bytes > 1.5 * vllm.startup.kv_budget_bytes


def test_published_logs_within_a_few_percent_given_their_weights():
    p = vt.predict()
    assert not p["why"].astype(bool).any(), p.loc[p["why"].astype(bool), ["id", "why"]]
    clean = p[p["clean"] & p["error_given_weights_pct"].notna()]
    assert len(clean) >= 10
    # the rule itself, with the weights the log printed: every clean run within 4 %
    assert clean["error_given_weights_pct"].abs().max() < 4.0
    # whole prediction (the planner's own weights): the dense FP8 run within 1 %, every clean run within 10 %
    llama = p[p["model"] == "Llama-3.1-8B"].iloc[0]
    assert abs(llama["error_pct"]) < 1.0
    assert p.loc[p["clean"], "error_pct"].abs().max() < 10.0


def test_cli_capacity_trtllm(capsys):
    assert cli.main(["capacity", "Llama-3.1-8B", "--gpu", "H100-SXM", "--engine", "trtllm", "--weights", "fp8",
                     "--free-gpu-memory-fraction", "0.8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    core = api.capacity("Llama-3.1-8B", "H100-SXM", engine="trtllm", weights="fp8", free_gpu_memory_fraction=0.8)
    assert out["engine"] == "trtllm" and out["kv_cache_tokens"] == core["kv_cache_tokens"] > 0
    assert out["settings"]["free_gpu_memory_fraction"] == {"value": 0.8, "source": "given"}
    assert cli.main(["capacity", "Llama-3.1-8B", "--gpu", "H100-SXM", "--engine", "trtllm",
                     "--free-gpu-memory-fraction", "0"]) == 2
    err = capsys.readouterr().err
    assert "free_gpu_memory_fraction" in err and "Traceback" not in err


def test_no_room_says_what_to_change():
    d = api.capacity("Llama-3.1-70B", "H100-SXM", engine="trtllm")
    assert not d["fits"] and d["kv_budget_bytes_per_gpu"] == 0
    assert "add GPUs (tp)" in d["reason"] and "gpu_memory_utilization" not in d["reason"]


def test_hybrid_mamba_models_are_refused_by_name():
    # TensorRT-LLM's MambaHybridCacheManager holds the recurrent state of max_batch_size sequences before its
    # memory profiling; the rule here has no term for it, so the pool would be silently far too large
    with pytest.raises(PlannerInputError) as e:
        api.capacity("Nemotron-H-8B-Base-8K", "H200", engine="trtllm")
    assert e.value.field == "engine" and "MambaHybridCacheManager" in str(e.value)


@pytest.mark.parametrize("flags, field", [
    (["--enforce-eager"], "enforce_eager"),
    (["--block-size", "7"], "block_size"),
    (["--kv-dtype", "int4"], "kv_cache_dtype"),
    (["--max-model-len", "1"], "max_model_len"),
    (["--gpu-memory-utilization", "0.8"], "gpu_memory_utilization"),
    (["--entry-point", "LLM"], "entry_point"),
])
def test_settings_tensorrt_llm_does_not_have_exit_2(flags, field, capsys):
    assert cli.main(["capacity", "Llama-3.1-8B", "--gpu", "H100-SXM", "--engine", "trtllm", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}") and "Traceback" not in err


def test_a_plan_takes_tensorrt_llms_own_block_size():
    p = api.build_plan("Llama-3.1-8B", "H100-SXM", Deployment(weights="bf16", kv_dtype="bf16", engine="paged",
                                                               server="trtllm"))
    assert p.startup.block_size == 32 and dict(p.startup.settings)["block_size"].source != "given"


def test_the_band_is_the_published_logs_spread():
    d = api.capacity("Llama-3.1-8B", "H100-SXM", engine="trtllm")
    b = d["band"]
    assert b["n"] >= 10 and "trtllm-startup.csv" in b["group"]
    assert d["kv_cache_tokens_low"] == int(d["kv_cache_tokens"] * (1 + b["low_pct"] / 100))
    assert b["low_pct"] <= b["median_pct"] <= b["high_pct"]


@pytest.mark.parametrize("version, era", [("0.19.0", "trtllm-pytorch"), ("0.20", "trtllm-pytorch-estimation"),
                                          ("1.2.0", "trtllm-pytorch-estimation"), ("1.3", "trtllm-1.3-estimation-batch"),
                                          ("1.3.0rc10", "trtllm-1.3-estimation-batch")])
def test_versions_find_their_era(version, era):
    # a two-part version is its .0 release, a release candidate is its release (engines.Version orders on numbers)
    e, _, note = profiles.engine_table("trtllm").resolve(version)
    assert e.id == era and not note


def test_1_3_rounds_the_pool_down_to_blocks():
    # 1.3.0rc10 logs max_tokens=1,809,966 and allocates 1,809,952: whole 32-token blocks, rounded down
    from planner.startup import trtllm_pool_blocks
    e13 = profiles.engine_table("trtllm").resolve("1.3.0")[0]
    e12 = profiles.engine_table("trtllm").resolve("1.2.0")[0]
    assert trtllm_pool_blocks(1_809_966 * 35_136, 35_136, 32, e13) * 32 == 1_809_952
    assert trtllm_pool_blocks(1_809_966 * 35_136, 35_136, 32, e12) * 32 == 1_809_984
