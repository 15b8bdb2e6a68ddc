"""'auto' KV cache dtype on a checkpoint that declares a KV scheme: each engine release allocates what its own
source says (profiles/engines/<engine>.json ``kv_auto_from_checkpoint``, planner/startup.py ``_kv_dtype``).

The checkpoints are laid out here as a folder with config.json (and hf_quant_config.json where nvidia's exports
keep their quantization), the way a downloaded checkpoint is."""

import json

import pytest

from planner import api, profiles
from planner.memory import Deployment
from planner.planning import plan_request
from planner.request import PlanRequest, Workload

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
         "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
# nvidia/Llama-3.1-8B-Instruct-FP8's hf_quant_config.json (ModelOpt FP8 weights, FP8 KV)
MODELOPT_FP8 = {"producer": {"name": "modelopt", "version": "0.15.0"},
                "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}
# an llm-compressor FP8 checkpoint with an FP8 KV scheme (the form of poolside/Laguna-XS.2-FP8's config.json)
CT_KV = {"static": {"dynamic": False, "num_bits": 8, "strategy": "tensor", "symmetric": True, "type": "float"},
         "per_head": {"dynamic": False, "num_bits": 8, "strategy": "attn_head", "symmetric": True, "type": "float"}}


def compressed_tensors(kv: dict) -> dict:
    return {"quant_method": "compressed-tensors", "format": "float-quantized", "kv_cache_scheme": kv, "ignore": ["lm_head"],
            "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": {"num_bits": 8, "type": "float",
                              "strategy": "token", "dynamic": True}, "weights": {"num_bits": 8, "type": "float",
                              "strategy": "channel", "dynamic": False}}}}


def checkpoint(tmp_path, name, config, hf_quant=None):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    if hf_quant is not None:
        (d / "hf_quant_config.json").write_text(json.dumps(hf_quant))
    return str(d)


def kv(model, engine, version, kv_dtype="auto", gpu="H100-SXM"):
    c = api.capacity(model, gpu, engine=engine, engine_version=version, kv_dtype=kv_dtype)
    return c["kv_dtype"], c["settings"]["kv_cache_dtype"]["source"], c["kv_bytes_per_token_per_gpu"]


def test_modelopt_fp8_kv_under_auto_follows_each_engines_first_release_that_reads_it(tmp_path):
    m = checkpoint(tmp_path, "llama-fp8", LLAMA, MODELOPT_FP8)
    # Llama-3.1-8B a token: 32 layers x 8 KV heads x 128 x (K, V) = 65,536 elements; bf16 131,072 B, fp8 65,536 B
    assert kv(m, "vllm", "0.13.0")[::2] == ("bf16", 131_072)      # resolve_kv_cache_dtype_string came in 0.14.0
    dtype, source, per_token = kv(m, "vllm", "0.14.0")
    assert (dtype, per_token) == ("fp8", 65_536)
    assert "hf_quant_config.json:quantization.kv_cache_quant_algo" in source and "vllm 0.14.0" in source
    assert kv(m, "sglang", "0.5.3")[::2] == ("bf16", 131_072)     # 0.5.3: only ModelOpt NVFP4 checkpoints
    assert kv(m, "sglang", "0.5.4")[::2] == ("fp8", 65_536)
    assert kv(m, "trtllm", "1.0.0")[::2] == ("fp8", 65_536)
    # a dtype the user gives is kept (ModelOpt's scheme never overrides one)
    assert kv(m, "vllm", "0.33.0", "bf16")[::2] == ("bf16", 131_072)


def test_compressed_tensors_kv_scheme_per_engine_and_release(tmp_path):
    static = checkpoint(tmp_path, "ct", {**LLAMA, "quantization_config": compressed_tensors(CT_KV["static"])})
    per_head = checkpoint(tmp_path, "ct-head", {**LLAMA, "quantization_config": compressed_tensors(CT_KV["per_head"])})
    assert kv(static, "vllm", "0.14.1")[0] == "bf16"              # Attention's kv_cache_scheme override: 0.15.0 on
    assert kv(static, "vllm", "0.15.0")[0] == "fp8"
    # 0.15 - 0.21 apply it over a given dtype too; 0.22 only under auto
    dtype, source, _ = kv(static, "vllm", "0.18.0", "bf16")
    assert dtype == "fp8" and "over the given bf16" in source
    assert kv(static, "vllm", "0.22.0", "bf16")[0] == "bf16"
    assert kv(per_head, "vllm", "0.33.0")[0] == "fp8"            # vLLM takes per-head schemes
    assert kv(static, "sglang", "0.5.18")[0] == "bf16" and kv(static, "sglang", "0.5.19")[0] == "fp8"
    dtype, source, _ = kv(per_head, "sglang", "0.5.23")          # SGLang only static per-tensor symmetric ones
    assert dtype == "bf16" and "does not read the checkpoint's config.json:quantization_config.kv_cache_scheme" in source
    assert kv(static, "trtllm", "1.3.0")[0] == "bf16"            # no confirmed release reads it: not applied


def test_an_mla_checkpoint_keeps_the_model_dtype_under_vllm_and_says_why(tmp_path):
    ds = profiles.model_config("DeepSeek-V3")
    ds = {k: v for k, v in ds.items() if k != "quantization_config"}
    m = checkpoint(tmp_path, "ds-ct", {**ds, "quantization_config": compressed_tensors(CT_KV["static"])})
    dtype, source, _ = kv(m, "vllm", "0.33.0")                  # MLAAttention has no kv_cache_scheme override
    assert dtype == "bf16" and "with MLA" in source and "give kv_dtype fp8" in source


def test_an_nvfp4_kv_scheme_is_said_not_modelled(tmp_path):
    q = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "NVFP4"}}
    m = checkpoint(tmp_path, "llama-nvfp4kv", LLAMA, q)
    dtype, source, per_token = kv(m, "trtllm", "1.3.0")
    assert (dtype, per_token) == ("bf16", 131_072)
    assert "asks for an nvfp4 cache, which trtllm 1.3.0 allocates and the planner does not model" in source
    assert "does not read" in kv(m, "sglang", "0.5.23")[1]        # SGLang never maps NVFP4 KV


def test_a_plan_takes_the_cache_its_engine_allocates():
    # bundled Gemma-4-31B-IT-NVFP4 (ModelOpt, kv_cache_scheme 8-bit float): vLLM 0.33 allocates an fp8 cache
    cap = api.capacity("Gemma-4-31B-IT-NVFP4", "H100-SXM", engine="vllm")
    bf16 = api.capacity("Gemma-4-31B-IT-NVFP4", "H100-SXM", engine="vllm", kv_dtype="bf16")
    assert cap["kv_dtype"] == "fp8" and cap["kv_bytes_per_token_per_gpu"] * 2 == bf16["kv_bytes_per_token_per_gpu"]
    auto = api.build_plan("Gemma-4-31B-IT-NVFP4", "H100-SXM", Deployment(weights="nvfp4", server="vllm", kv_dtype="auto"))
    assert auto.memory.dep.kv_dtype == "fp8" and auto.startup.kv_tokens == cap["kv_cache_tokens"]
    given = api.build_plan("Gemma-4-31B-IT-NVFP4", "H100-SXM", Deployment(weights="nvfp4", server="vllm", kv_dtype="bf16"))
    assert given.memory.dep.kv_dtype == "bf16" and given.startup.kv_tokens == bf16["kv_cache_tokens"]
    # the plan names the cache it was planned with, and why
    r = plan_request(PlanRequest("Gemma-4-31B-IT-NVFP4", "H100-SXM", Workload(None, 1024, 128, batch=8),
                                 Deployment(weights="nvfp4", server="vllm", kv_dtype="auto")))
    assert r.labels()["kv_dtype"] == "fp8"
    assert "the checkpoint's KV scheme (config.json:quantization_config.kv_cache_scheme: fp8)" in \
        r.provenance["kv_cache_bytes_per_gpu"]


def test_a_32_bit_checkpoint_caches_in_16_bits():
    # gemma-2-9b ships float32 weights; vLLM downcasts float32 models to the platform's first dtype (bf16) and its
    # cache follows: 42 layers x 8 KV heads x 256 x (K, V) x 2 B = 344,064 B a token (fp32 would be 688,128)
    c = api.capacity("gemma-2-9b", "H100-SXM", engine="vllm")  # weights bf16 (its default): served, and cached, so
    assert (c["kv_dtype"], c["kv_bytes_per_token_per_gpu"]) == ("bf16", 344_064)
    # fp8 weights leave the checkpoint's dtype to the engine: float32 is downcast to bf16, and the cache with it
    q = api.capacity("gemma-2-9b", "H100-SXM", engine="vllm", weights="fp8")
    assert (q["kv_dtype"], q["kv_bytes_per_token_per_gpu"]) == ("bf16", 344_064)
    assert "Downcast for float32 models" in q["settings"]["kv_cache_dtype"]["source"]


def test_auto_kv_dtype_is_the_one_rule_capacity_and_plans_use():
    # api.auto_kv_dtype (what the dashboard's pages compute with under "auto") answers as capacity does
    assert api.auto_kv_dtype("Gemma-4-31B-IT-NVFP4")[0] == "fp8"
    assert api.auto_kv_dtype("Gemma-4-31B-IT-NVFP4", "vllm", "0.13.0")[0] == "bf16"
    assert api.auto_kv_dtype("Llama-3.1-8B", "sglang")[0] == "bf16"
    assert api.auto_kv_dtype("gemma-2-9b", "trtllm")[0] == "bf16"
    # an fp16 checkpoint planned with bf16 weights (its default) is served, and cached, in bf16
    assert api.auto_kv_dtype("Llama-2-7b-hf")[0] == "bf16" and api.auto_kv_dtype("Llama-2-7b-hf", weights="fp16")[0] == "fp16"


def test_boundaries_a_rule_filter_alone_decides():
    # SGLang 0.5.3 read the scheme of ModelOpt NVFP4 checkpoints only (ModelOptFp4Config): Gemma-4-31B-IT-NVFP4 fp8
    assert kv("Gemma-4-31B-IT-NVFP4", "sglang", "0.5.3")[0] == "fp8"
    assert kv("Gemma-4-31B-IT-NVFP4", "sglang", "0.5.2")[0] == "bf16"


def test_vllm_0_21_is_the_last_release_that_overrides_a_given_dtype(tmp_path):
    static = checkpoint(tmp_path, "ct", {**LLAMA, "quantization_config": compressed_tensors(CT_KV["static"])})
    assert kv(static, "vllm", "0.21.0", "bf16")[0] == "fp8" and kv(static, "vllm", "0.22.0", "bf16")[0] == "bf16"


@pytest.mark.parametrize("scheme", [[8, "float"], 8, "int8", {}, {"num_bits": [8], "type": "float", "dynamic": False},
                                    {"num_bits": "8", "type": "float", "dynamic": False},
                                    {"num_bits": 8, "type": "float", "dynamic": True}])
def test_a_scheme_no_engine_maps_keeps_the_model_dtype_and_never_raises(tmp_path, scheme):
    m = checkpoint(tmp_path, "odd", {**LLAMA, "quantization_config": compressed_tensors(scheme)})
    for engine in ("vllm", "sglang", "trtllm"):
        assert kv(m, engine, None)[::2] == ("bf16", 131_072)


def test_a_scheme_written_asymmetric_as_text_is_not_per_tensor_symmetric(tmp_path):
    odd = {**CT_KV["static"], "symmetric": "false"}
    m = checkpoint(tmp_path, "asym", {**LLAMA, "quantization_config": compressed_tensors(odd)})
    assert kv(m, "sglang", "0.5.23")[0] == "bf16" and kv(m, "vllm", "0.33.0")[0] == "fp8"


def test_engine_commands_ask_for_a_cache_only_where_auto_would_allocate_another():
    from planner.commands import commands

    def kv_flags(model, engine, kv_dtype):
        c = commands(model, "H100-SXM", Deployment(weights=api.default_weights(profiles.load_model(model)),
                                                    kv_dtype=kv_dtype, server=engine), 512, 64, 4)
        argv = c.serve.argv
        i = argv.index("--kv-cache-dtype") if "--kv-cache-dtype" in argv else None
        return (argv[i + 1] if i is not None else None), " ".join(c.serve.notes)
    # an fp16 checkpoint served in 16 bits: auto and bf16 are the engine's own cache, no flag, no refusal
    for engine in ("vllm", "sglang", "trtllm"):
        assert kv_flags("Llama-2-7b-hf", engine, "auto")[0] is None and kv_flags("Llama-2-7b-hf", engine, "bf16")[0] is None
    # a checkpoint whose fp8 scheme the engine reads: auto writes nothing, a bf16 plan must ask for bf16
    assert kv_flags("Gemma-4-31B-IT-NVFP4", "vllm", "auto")[0] is None
    assert kv_flags("Gemma-4-31B-IT-NVFP4", "vllm", "bf16")[0] == "bfloat16"
    assert kv_flags("Gemma-4-31B-IT-NVFP4", "sglang", "bf16")[0] == "bf16"
    assert "kv_cache_config: {dtype: bf16}" in kv_flags("Gemma-4-31B-IT-NVFP4", "trtllm", "bf16")[1]


def test_sweep_slo_and_hf_generate_name_the_cache_auto_resolves_to():
    from planner import sweep
    from planner.slo import Candidates, Targets, plan_capacity
    df = sweep.sweep(["Gemma-4-31B-IT-NVFP4"], ["H100-SXM"], [8], [1024], [128], kv_dtypes=["auto", "fp8"])
    assert list(df["kv_dtype"].astype(str)) == ["fp8"]  # auto is fp8 here: one row, not two alike
    wl = Workload(2.0, 1024, 128)
    cap = plan_capacity("Gemma-4-31B-IT-NVFP4", wl, Targets(ttft_s=2.0, tpot_s=0.1),
                        Candidates(gpus=("H100-SXM",), tps=(1,), weights=("nvfp4",), kv_dtypes=("auto",)))
    assert set(cap["kv_dtype"].astype(str)) == {"fp8"}
    hf = plan_request(PlanRequest("Llama-3.1-8B", "H100-SXM", Workload(None, 512, 64, batch=2),
                                  Deployment(engine="transformers", kv_dtype="auto")))
    assert hf.labels()["kv_dtype"] == "bf16"
