"""A checkpoint's quantization_config decides its weight format and, through its ignore lists, which tensors
stay 16-bit (planner/quantconfig.py). Every byte count is derived by hand on the tiny llama of tiny_configs.

The tiny llama: vocab 128, hidden 64, MLP 96, 2 layers, 4 heads, 2 KV heads of 16, untied.
  linears per layer (out x in): q 64x64, k 32x64, v 32x64, o 64x64, gate 96x64, up 96x64, down 64x96
    = 30,720 weights; 61,440 in 2 layers; output rows 448 a layer (896); input columns 480 a layer (960)
  16-bit rest: embed 128x64 = 8,192 -> 16,384 B; lm_head 16,384 B; norms 2 x 2 x 64 + 64 = 320 -> 640 B
    = 33,408 B (embed + lm_head + norms); 17,024 B without the lm_head
"""

from __future__ import annotations

import pytest

from planner import api, profiles
from planner.errors import PlannerInputError
from planner.formats import format_from_quantization_config, tensor_bytes
from planner.spec import ModelSpec
from tiny_configs import TINY

TABLE = profiles.formats()
REST, REST_NO_HEAD = 33_408, 17_024
INT4_G32 = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 32, "symmetric": True}


def spec(qc: dict | None, base: str = "llama-gqa") -> ModelSpec:
    return ModelSpec.from_hf_config({**TINY[base], "quantization_config": qc} if qc else TINY[base], "tiny")


def weights(qc: dict | None, base: str = "llama-gqa", fmt: str | None = None) -> tuple[str, float]:
    s = spec(qc, base)
    fid = fmt or format_from_quantization_config(s, TABLE)
    return fid, float(tensor_bytes(s, TABLE, fid)["bytes"].sum())


def ct(w: dict, ignore: list[str], acts: dict | None = None, targets: list[str] | None = None) -> dict:
    return {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ignore,
            "config_groups": {"group_0": {"targets": targets or ["Linear"], "weights": w, "input_activations": acts}}}


CASES = [
    # GPTQ 4-bit g32: 4 + (16 + 4)/32 = 4.625 bpw + int32 g_idx per input column:
    # 61,440 x 4.625 / 8 = 35,520 + 960 x 4 = 3,840 -> 39,360 + 33,408 (fp16) = 72,768
    ({"quant_method": "gptq", "bits": 4, "group_size": 32}, "gptq-4bit-g32", 72_768),
    # GPTQ 3-bit g64: 3 + 19/64 = 3.296875 bpw: 61,440 x 3.296875 / 8 = 25,320 + 3,840 + 33,408 = 62,568
    ({"quant_method": "gptq", "bits": 3, "group_size": 64}, "gptq-3bit-g64", 62_568),
    # AWQ 4-bit g32: 4.625 bpw, no g_idx: 35,520 + 33,408 = 68,928
    ({"quant_method": "awq", "bits": 4, "group_size": 32}, "awq-4bit-g32", 68_928),
    # AWQ without zero points: 4 + 16/32 = 4.5 bpw: 34,560 + 33,408 = 67,968
    ({"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": False}, "awq-4bit-g32-nozp", 67_968),
    # bitsandbytes int8: 8 bpw + fp32 absmax per output row: 61,440 + 896 x 4 = 65,024 + 33,408 = 98,432
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-int8", 98_432),
    # fp8 blocks of 128 x 128: 8 + 32/16,384 bpw: 61,440 x 8.001953125 / 8 = 61,455 + 33,408 = 94,863
    ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "fp8-block", 94_863),
    # fp8 blocks of 64 x 64: 8 + 32/4,096 = 8.0078125 bpw: 61,500 + 33,408 = 94,908
    ({"quant_method": "fp8", "weight_block_size": [64, 64]}, "fp8-block-64x64", 94_908),
    # fp8 with one scale per tensor: 61,440 + 33,408 = 94,848
    ({"quant_method": "fp8", "activation_scheme": "static"}, "fp8-tensor", 94_848),
    # ModelOpt FP8 (the legacy nested hf_quant_config layout): per-tensor, lm_head excluded: 94,848
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}},
     "fp8-tensor", 94_848),
    # compressed-tensors W4A16 g32 symmetric: 4 + 16/32 = 4.5 bpw: 34,560 + 33,408 = 67,968
    (ct(INT4_G32, ["lm_head"]), "w4a16-g32", 67_968),
    # compressed-tensors FP8 dynamic (per-channel): 8 bpw + fp32 per row = 65,024 + 33,408 = 98,432
    (ct({"num_bits": 8, "type": "float", "strategy": "channel"}, ["lm_head"],
        {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True}), "fp8", 98_432),
    # compressed-tensors NVFP4 (float 4-bit, group 16): 4 + 8/16 = 4.5 bpw: 34,560 + 33,408 = 67,968
    (ct({"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}, ["lm_head"]), "nvfp4", 67_968),
]


@pytest.mark.parametrize("qc, fid, nbytes", CASES, ids=[c[1] for c in CASES])
def test_each_format_s_bytes_are_hand_derived(qc, fid, nbytes):
    assert weights(qc) == (fid, nbytes)


def test_compressed_tensors_quantizes_the_lm_head_unless_ignored():
    # no ignore list: the lm_head is a Linear too: (61,440 + 8,192) x 4.5 / 8 = 39,168 + 17,024 = 56,192
    assert weights(ct(INT4_G32, [])) == ("w4a16-g32", 56_192)
    assert weights(ct(INT4_G32, ["lm_head"]))[1] == 67_968


def test_w8a8_with_a_regex_in_the_ignore_list():
    # int8 weights + fp32 per row on 6 of 7 linears: 61,440 - 12,288 (down) = 49,152 + (896 - 128) x 4 = 52,224;
    # the down projections stay bf16: 12,288 x 2 = 24,576; + 33,408 = 110,208
    qc = ct({"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True}, ["lm_head", "re:.*down_proj$"],
            {"num_bits": 8, "type": "int", "strategy": "token", "dynamic": True})
    assert weights(qc) == ("w8a8-int8", 110_208)


def test_modelopt_nvfp4_exclude_modules_are_wildcards():
    # quantized: every Linear, lm_head too: (61,440 + 8,192) x 4.5 / 8 = 39,168 + 17,024 = 56,192
    qc = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16}
    assert weights(qc) == ("nvfp4", 56_192)
    # lm_head and layer 0's attention (12,288 weights) excluded: 49,152 x 4.5 / 8 = 27,648 + 24,576 (bf16 attention)
    # + 16,384 (lm_head) + 17,024 = 85,632
    assert weights({**qc, "ignore": ["lm_head", "model.layers.0.self_attn*"]})[1] == 85_632
    # the same list as a remote-code image-text wrapper names it (nvidia/Kimi-K2.6-NVFP4: its language_model is a
    # whole causal LM, 'language_model.model.layers.{i}.self_attn*', 'language_model.lm_head'): the same bytes
    assert weights({**qc, "ignore": ["language_model.lm_head", "language_model.model.layers.0.self_attn*"]})[1] == 85_632


def test_awq_modules_to_not_convert_use_transformers_matching():
    # layer 0's attention (12,288) and every down_proj (a suffix: 12,288) stay fp16: 36,864 x 4.625 / 8 = 21,312
    # + 24,576 x 2 = 49,152 + 33,408 = 103,872
    qc = {"quant_method": "awq", "bits": 4, "group_size": 32, "modules_to_not_convert": ["model.layers.0.self_attn", "down_proj"]}
    assert weights(qc) == ("awq-4bit-g32", 103_872)


def test_bitsandbytes_skip_modules():
    # layer 1's MLP (18,432 weights) kept bf16: 43,008 x 4.5 / 8 = 24,192 + 36,864 + 33,408 = 94,464
    qc = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
          "llm_int8_skip_modules": ["lm_head", "model.layers.1.mlp"]}
    assert weights(qc) == ("bnb-nf4", 94_464)


def test_an_ignore_list_naming_some_experts_covers_that_share_of_the_row():
    # qwen3-moe tiny: 4 experts of down 64 x 32 = 2,048 weights; 2 of layer 0's kept bf16 instead of 4.5 bpw:
    # 2 x 2,048 x (16 - 4.5) / 8 = 5,888 B more
    base = weights(ct(INT4_G32, ["lm_head"]), "qwen3-moe")[1]
    two = weights(ct(INT4_G32, ["lm_head", "re:model.layers.0.mlp.experts.[01].down_proj$"]), "qwen3-moe")[1]
    assert two - base == 5_888


def test_mxfp4_quantizes_the_gpt_oss_experts_only():
    # gptoss tiny: 4 experts x (gate 32x64 + up 32x64 + down 64x32) = 24,576 weights a layer, 49,152 in 2 layers,
    # 4.25 bpw instead of 16: 49,152 x 11.75 / 8 = 72,192 B less than bf16
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                              "model.embed_tokens", "lm_head"]}
    assert weights(None, "gptoss-sinks", "bf16")[1] - weights(qc, "gptoss-sinks")[1] == 72_192


def test_an_ignore_list_belongs_to_its_checkpoint_s_format_only():
    """The same config planned in another format ignores the list (it describes this checkpoint)."""
    qc = ct(INT4_G32, [])
    assert weights(qc, fmt="bf16")[1] == 156_288  # 61,440 x 2 + 33,408
    assert weights(qc, fmt="w4a16-g32")[1] == 56_192


@pytest.mark.parametrize("qc, field", [
    (ct(INT4_G32, ["re:(a+)+$"]), "ignore"),
    (ct(INT4_G32, ["re:[unclosed"]), "ignore"),
    (ct(INT4_G32, [3]), "ignore"),
    (ct({"num_bits": 3, "type": "float", "strategy": "tensor"}, []), "config_groups"),
    ({"quant_method": "compressed-tensors"}, "config_groups"),
    ({"quant_method": "awq", "bits": 4, "group_size": 32, "modules_to_not_convert": "lm_head"}, "modules_to_not_convert"),
    ({"quant_method": "modelopt", "quant_algo": "INT3"}, "quant_algo"),
    ({"quant_method": "gptq", "bits": 9}, "bits"),
    ({"quant_method": "fp8", "weight_block_size": [128, 128, 1]}, "weight_block_size"),
    ({"quant_method": "hqq"}, "quant_method"),
])
def test_bad_quantization_configs_name_the_field(qc, field):
    with pytest.raises(PlannerInputError) as e:
        weights(qc)
    assert field in e.value.field


def test_the_bundled_awq_checkpoint_defaults_to_awq_and_its_bytes_are_unchanged():
    s = profiles.load_model("Meta-Llama-3.1-8B-Instruct-AWQ-INT4")
    assert api.default_weights(s) == "awq-4bit-g128"
    # 4e of docs/weight-formats.md: 5.728 GB on the Hub
    assert api.inspect_model(s)["weight_bytes"] / 1e9 == pytest.approx(5.728, abs=0.001)


def test_qwen3_fp8_s_long_list_changes_nothing_it_already_keeps():
    """Its modules_to_not_convert (lm_head, routers, norms of 94 layers) names what fp8-block keeps in bf16."""
    s = profiles.load_model("Qwen3-235B-A22B-FP8")
    listed = tensor_bytes(s, TABLE, "fp8-block")["bytes"].sum()
    bare = ModelSpec.from_hf_config({**profiles.read_json(profiles.ROOT / "models" / "Qwen3-235B-A22B-FP8" / "config.json",
                                                          "config.json"),
                                     "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}},
                                    "bare")
    assert listed == pytest.approx(tensor_bytes(bare, TABLE, "fp8-block")["bytes"].sum())


def test_an_image_text_checkpoint_s_exclude_list_names_its_language_model_layers():
    # nvidia/Gemma-4-31B-IT-NVFP4 (bundled) excludes 'model.language_model.layers.{i}.self_attn*' for its
    # 60 layers: transformers' Gemma4ForConditionalGeneration names the text layers under language_model.
    # Every attention row must stay 16-bit and every MLP row NVFP4 (the format's own default).
    from planner import profiles
    from planner.params import inventory
    from planner.quantconfig import read, storage_fractions

    spec, table = profiles.load_model("Gemma-4-31B-IT-NVFP4"), profiles.formats()
    cq = read(spec, table)
    assert (cq.method, cq.format_id) == ("modelopt", "nvfp4")
    inv = inventory(spec)
    shares = storage_fractions(spec, table, table.formats["nvfp4"])
    attn = inv["role"].isin(["attn_q", "attn_k", "attn_v", "attn_o"]).to_numpy()
    assert attn.sum() > 0 and (shares["bf16"][attn] == 1).all()
    assert sorted(set(inv.loc[attn, "layer"])) == list(range(60))
    mlp = inv["role"].str.startswith("mlp_").to_numpy()
    assert (shares["bf16"][mlp] == 0).all()


def test_an_unmodelled_checkpoint_format_can_still_be_planned_in_a_format_picked_explicitly():
    # ModelOpt MIXED_PRECISION (nvidia's NVFP4 + FP8 checkpoints) is refused as the checkpoint's own format, naming
    # the field; the refusal says to pick a weight format, and a picked one plans as the 16-bit model would:
    # bf16 61,440 x 2 + 33,408 = 156,288 B, fp8 (one scale per output row) the same model's figure
    qc = {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "config_groups": {}}
    with pytest.raises(PlannerInputError) as e:
        weights(qc)
    assert e.value.field.endswith("quant_algo") and "pick a weight format explicitly" in str(e.value)
    assert weights(qc, fmt="bf16")[1] == 156_288
    assert weights(qc, fmt="fp8")[1] == weights(None, fmt="fp8")[1]
    from planner import commands
    from planner.memory import Deployment
    spec = ModelSpec.from_hf_config({**TINY["llama-gqa"], "quantization_config": qc}, "mixed")
    cmd = commands.commands(spec, "H100-SXM", Deployment(weights="fp8"), 128, 16, 4)
    assert any("cannot make it from the given checkpoint" in n for n in cmd.serve.notes)


def test_a_modelopt_checkpoint_s_hf_quant_config_json_beside_its_config_is_read(tmp_path):
    # nvidia's ModelOpt exports keep their quantization in hf_quant_config.json, config.json has none: a folder with
    # both plans NVFP4 (every Linear and lm_head: (61,440 + 8,192) x 4.5 / 8 = 39,168 + 17,024 = 56,192 B, as
    # test_modelopt_nvfp4_exclude_modules_are_wildcards), not 16-bit weights (156,288 B)
    import json as _json
    (tmp_path / "config.json").write_text(_json.dumps(TINY["llama-gqa"]))
    (tmp_path / "hf_quant_config.json").write_text(_json.dumps(
        {"producer": {"name": "modelopt", "version": "0.44.0"}, "quantization": {"quant_algo": "NVFP4", "group_size": 16}}))
    s = profiles.load_model(str(tmp_path))
    assert api.default_weights(s) == "nvfp4"
    assert float(tensor_bytes(s, TABLE, "nvfp4")["bytes"].sum()) == 56_192
    # a mixed-precision export is refused naming the file it came from
    (tmp_path / "hf_quant_config.json").write_text(_json.dumps({"quantization": {"quant_algo": "MIXED_PRECISION"}}))
    with pytest.raises(PlannerInputError) as e:
        api.default_weights(profiles.load_model(str(tmp_path / "config.json")))
    assert e.value.field == "hf_quant_config.json:quantization.quant_algo"
