"""Weight formats (planner/formats.py): storage per tensor, GPTQ/AWQ for any bit width and group size,
the checkpoint's own format, GGUF's extra bits, against values derived by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_kv_known import LLAMA31_8B

from planner import profiles
from planner.errors import PlannerInputError
from planner.formats import (
    FormatTable,
    StorageType,
    bits_per_weight,
    format_from_quantization_config,
    tensor_bytes,
    use_more_bits,
    weight_bytes,
)
from planner.spec import ModelSpec
from tiny_configs import TINY

TINY_LLAMA = ModelSpec.from_hf_config(TINY["llama-gqa"], "tiny")  # hidden 64, 4 heads of 16, 2 KV heads, MLP 96


def templates() -> FormatTable:
    """Only the two templates the formula copies (GPTQ and AWQ 4-bit group 128), as in the bundled file."""
    return FormatTable.from_dict({
        "storage_types": {"f16": {"bits_per_weight": 16}, "gptq_4b_g128": {"bits_per_weight": 4.15625, "per_in_col_bits": 32},
                          "awq_4b_g128": {"bits_per_weight": 4.15625}},
        "formats": {"gptq-4bit-g128": {"family": "gptq", "compute_dtype": "fp16", "notes": "gptq notes", "source": "AutoGPTQ",
                                       "roles": {"default": "gptq_4b_g128", "embed": "f16", "lm_head": "f16", "norm": "f16"}},
                    "awq-4bit-g128": {"family": "awq", "compute_dtype": "fp16",
                                      "roles": {"default": "awq_4b_g128", "embed": "f16", "lm_head": "f16", "norm": "f16"}}}})


def quantized(**q) -> ModelSpec:
    return ModelSpec.from_hf_config({**TINY["llama-gqa"], "quantization_config": q}, "q")


def test_gptq_any_bits_and_group_size_carry_a_packed_zero_point():
    # GPTQ 3-bit group 64: 3 bits + (16-bit scale + 3-bit packed zero) / 64 = 3 + 19/64 = 3.296875 bits
    # per weight, plus a 32-bit g_idx per input column
    table = templates()
    fid = format_from_quantization_config(quantized(quant_method="gptq", bits=3, group_size=64), table)
    assert fid == "gptq-3bit-g64"
    st = table.storage_type("gptq_3b_g64")
    assert (st.id, st.bits_per_weight, st.per_out_row_bits, st.per_in_col_bits) == ("gptq_3b_g64", 3 + 19 / 64, 0.0, 32.0)
    assert st.source == "formula: bits + (fp16 scale + packed zero) / group_size (see docs/weight-formats.md)"
    fmt = table.get(fid)
    assert (fmt.id, fmt.family, fmt.label, fmt.compute_dtype) == ("gptq-3bit-g64", "gptq", "GPTQ 3-bit g64", "fp16")
    assert (fmt.notes, fmt.source) == ("gptq notes", "AutoGPTQ")  # the template's
    assert dict(fmt.roles) == {"default": "gptq_3b_g64", "embed": "f16", "lm_head": "f16", "norm": "f16"}
    # the tiny q projection (64 x 64): 4,096 x 3.296875 + 64 columns x 32 = 15,552 bits = 1,944 B
    df = tensor_bytes(TINY_LLAMA, table, fid)
    q = df[(df.role == "attn_q") & (df.layer == 0)]
    assert float(q["bytes"].iloc[0]) == 1_944
    assert q["storage"].iloc[0] == "gptq_3b_g64"
    # AWQ 8-bit group 32: 8 + (16 + 8) / 32 = 8.75 bits, no g_idx
    fid = format_from_quantization_config(quantized(quant_method="awq", w_bit=8, q_group_size=32), table)
    assert fid == "awq-8bit-g32"
    st = table.storage_type("awq_8b_g32")
    assert (st.bits_per_weight, st.per_out_row_bits, st.per_in_col_bits) == (8.75, 0.0, 0.0)
    # GPTQ 2-bit per channel (group_size -1): 2 bits per weight, one fp16 scale + 2-bit zero per output
    # row (18 bits), g_idx per column; the q projection: 4,096 x 2 + 64 x 18 + 64 x 32 = 11,392 bits = 1,424 B
    fid = format_from_quantization_config(quantized(quant_method="gptq", bits=2, group_size=-1), table)
    assert fid == "gptq-2bit-perchannel"
    st = table.storage_type("gptq_2b_perchannel")
    assert (st.bits_per_weight, st.per_out_row_bits, st.per_in_col_bits) == (2.0, 18.0, 32.0)
    df = tensor_bytes(TINY_LLAMA, table, fid)
    assert float(df[(df.role == "attn_q") & (df.layer == 0)]["bytes"].iloc[0]) == 1_424
    # group_size 0 is per channel too: 8 bits + one 16-bit scale and 8-bit zero per row (24 bits)
    assert format_from_quantization_config(quantized(quant_method="gptq", bits=8, group_size=0), table) == "gptq-8bit-perchannel"
    st = table.storage_type("gptq_8b_perchannel")
    assert (st.bits_per_weight, st.per_out_row_bits) == (8.0, 24.0)
    # a group of one weight: 4 + (16 + 4) / 1 = 24 bits per weight, nothing per row
    assert format_from_quantization_config(quantized(quant_method="gptq", bits=4, group_size=1), table) == "gptq-4bit-g1"
    st = table.storage_type("gptq_4b_g1")
    assert (st.bits_per_weight, st.per_out_row_bits) == (24.0, 0.0)
    # defaults: 4 bits, group 128 (a listed format, returned as is)
    assert format_from_quantization_config(quantized(quant_method="GPTQ"), table) == "gptq-4bit-g128"
    assert format_from_quantization_config(quantized(quant_method="awq"), table) == "awq-4bit-g128"
    assert len(table.formats) == 2  # the variants are built from their names: the table never grows


def test_the_formula_reproduces_the_bundled_gptq_and_awq_storage_types():
    # the bundled file lists these with their own derivation; the formula must land on the same bits
    bundled = profiles.formats().storage
    for method, bits, group, sid in (("gptq", 3, 128, "gptq_3b_g128"), ("gptq", 2, 128, "gptq_2b_g128"),
                                     ("gptq", 8, 128, "gptq_8b_g128"), ("gptq", 4, 32, "gptq_4b_g32"),
                                     ("gptq", 4, 64, "gptq_4b_g64"), ("gptq", 4, -1, "gptq_4b_perchannel")):
        table = templates()
        fid = format_from_quantization_config(quantized(quant_method=method, bits=bits, group_size=group), table)
        mine = table.storage_type(dict(table.get(fid).roles)["default"])
        ref = bundled[sid]
        assert (mine.bits_per_weight, mine.per_out_row_bits, mine.per_in_col_bits) == (
            ref.bits_per_weight, ref.per_out_row_bits, ref.per_in_col_bits), sid


def test_unsupported_bit_widths_and_methods_name_the_field():
    with pytest.raises(PlannerInputError, match="must be a whole number from 2 to 8, got 9") as e:
        format_from_quantization_config(quantized(quant_method="gptq", bits=9, group_size=128), templates())
    assert e.value.field == "config.json:quantization_config.bits"
    with pytest.raises(PlannerInputError, match="quant_method 'eetq' is not modelled") as e:
        format_from_quantization_config(quantized(quant_method="eetq"), templates())
    assert e.value.field == "config.json:quantization_config.quant_method"
    assert e.value.fix.startswith("pick a weight format explicitly (modelled: gptq, awq, bitsandbytes")
    with pytest.raises(PlannerInputError) as e:  # a quantization_config without a method
        format_from_quantization_config(quantized(bits=4), templates())
    assert e.value.problem == "quant_method '' is not modelled"
    assert format_from_quantization_config(TINY_LLAMA, templates()) is None


def test_the_checkpoints_own_format_for_other_methods():
    t = profiles.formats()
    assert format_from_quantization_config(quantized(quant_method="bitsandbytes", load_in_8bit=True), t) == "bnb-int8"
    assert format_from_quantization_config(quantized(quant_method="bitsandbytes", load_in_4bit=True), t) == "bnb-fp4"
    assert format_from_quantization_config(quantized(quant_method="bitsandbytes", bnb_4bit_quant_type="NF4",
                                                     bnb_4bit_use_double_quant=True), t) == "bnb-nf4-dq"
    # fp8 without a weight_block_size: one scale per tensor (the bundled fp8-tensor format)
    assert format_from_quantization_config(quantized(quant_method="fp8"), t) == "fp8-tensor"
    assert format_from_quantization_config(quantized(quant_method="fbgemm_fp8"), t) == "fp8"
    with pytest.raises(PlannerInputError, match="must name at least one quantization group"):  # nothing to read
        format_from_quantization_config(quantized(quant_method="compressed-tensors"), t)
    assert format_from_quantization_config(quantized(quant_method="fp8", weight_block_size=[128, 128]), t) == "fp8-block"
    assert format_from_quantization_config(quantized(quant_method="mxfp4"), t) == "mxfp4"


def test_storage_for_each_role():
    t = FormatTable.from_dict({
        "storage_types": {"a": {"bits_per_weight": 4}, "b": {"bits_per_weight": 8}, "c": {"bits_per_weight": 16},
                          "f32": {"bits_per_weight": 32}, "bf16": {"bits_per_weight": 16}},
        "formats": {"x": {"family": "gguf", "roles": {"default": "a", "mlp_gate": "b", "embed": "c", "mlp_up": "f32",
                                                      "mlp_down": "bf16"}},
                    "y": {"family": "float", "roles": {"default": "a", "norm": "c"}},
                    "z": {"family": "gptq", "roles": {"default": "a", "expert_gate": "c"}}}})
    x, y, z = t.get("x"), t.get("y"), t.get("z")
    assert x.storage_for("norm", False) == "f32"        # GGUF keeps 1-D tensors in f32
    assert t.get("z").storage_for("bias", False) == "bf16"  # others in 16 bit
    assert y.storage_for("norm", False) == "c"          # unless the format names it
    assert x.storage_for("expert_gate", True) == "b"    # an expert's gate is quantized like the MLP's
    assert x.storage_for("pos_embed", True) == "c"      # learned positions like the token embedding
    assert x.storage_for("expert_up", True) == "f32"    # and its up and down projections
    assert x.storage_for("expert_down", True) == "bf16"
    assert y.storage_for("expert_up", True) == "a"      # no mlp_up role: the default
    assert x.storage_for("attn_v", True) == "a"
    assert z.storage_for("expert_gate", True) == "c"    # the role itself first
    assert (x.label, x.compute_dtype, x.more_bits_type) == ("x", "bf16", "")
    with pytest.raises(PlannerInputError, match="unknown storage type 'q9'") as e:
        FormatTable.from_dict({"storage_types": {"a": {"bits_per_weight": 4}},
                               "formats": {"w": {"family": "gguf", "roles": {"default": "q9"}}}})
    assert e.value.field == "weight_formats.json:w"
    with pytest.raises(PlannerInputError, match="unknown storage type 'q9'"):
        FormatTable.from_dict({"storage_types": {"a": {"bits_per_weight": 4}},
                               "formats": {"w": {"family": "gguf", "roles": {"default": "a"},
                                                 "more_bits": {"roles": ["attn_v"], "storage_type": "q9"}}}})


def test_format_names_match_loosely_and_unknown_ones_list_the_choices():
    t = templates()
    assert t.get("GPTQ_4bit_G128").id == "gptq-4bit-g128"
    with pytest.raises(PlannerInputError, match="unknown weight format 'int3'.*gptq-4bit-g128, awq-4bit-g128") as e:
        t.get("int3")
    assert e.value.field == "weights"
    assert hash(t) == id(t)


def test_llama_cpp_use_more_bits_layers():
    # n = 32: n/8 = 4; layers 0-3, 28-31 and those with (i - 4) % 3 == 2: 6, 9, ..., 27
    layers = np.arange(32)
    assert list(layers[use_more_bits(layers, 32)]) == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    # n = 10: n/8 = 1, 7n/8 = 8: layers 0, 8, 9 and (i - 1) % 3 == 2: 3, 6
    assert list(np.arange(10)[use_more_bits(np.arange(10), 10)]) == [0, 3, 6, 8, 9]


def test_gguf_mix_gives_the_chosen_layers_more_bits():
    # Q4_K (4.5 bits) everywhere, Q6_K (6.5625 bits) for attn_v in use_more_bits layers; tiny Llama
    # (2 layers: n/8 = 0, 7n/8 = 14 // 8 = 1: layer 1 only; layer 0 has (0 - 0) % 3 = 0). attn_v is
    # 32 x 64 = 2,048 weights: 2,048 x 4.5 / 8 = 1,152 B in layer 0, 2,048 x 6.5625 / 8 = 1,680 B in layer 1
    t = FormatTable.from_dict({
        "storage_types": {"Q4_K": {"bits_per_weight": 4.5}, "Q6_K": {"bits_per_weight": 6.5625},
                          "f32": {"bits_per_weight": 32}},
        "formats": {"Q4_K_M": {"family": "gguf", "roles": {"default": "Q4_K", "embed": "Q4_K", "lm_head": "Q6_K"},
                               "more_bits": {"roles": ["attn_v", "mlp_down"], "storage_type": "Q6_K"}}}})
    df = tensor_bytes(TINY_LLAMA, t, "Q4_K_M")
    v = df[df.role == "attn_v"]
    assert list(v["storage"]) == ["Q4_K", "Q6_K"] and list(v["bytes"]) == [1_152, 1_680]
    assert list(df[df.role == "attn_k"]["storage"]) == ["Q4_K", "Q4_K"]
    # the lm_head (outside the layers) follows its own role, not the mix
    assert list(df[df.role == "lm_head"]["storage"]) == ["Q6_K"]
    # 16 layers of Llama-3.1-8B shapes: use_more_bits(i, 16): n/8 = 2, 7n/8 = 14: 0, 1, 4, 7, 10, 13, 14, 15
    spec = ModelSpec.from_hf_config({**LLAMA31_8B, "num_hidden_layers": 16}, "l16")
    df = tensor_bytes(spec, t, "Q4_K_M")
    bumped = sorted(df[(df.role == "mlp_down") & (df.storage == "Q6_K")]["layer"])
    assert bumped == [0, 1, 4, 7, 10, 13, 14, 15]


def test_bytes_bits_per_weight_and_active_bytes_of_experts():
    # tiny Mixtral in a 4-bit format with 16-bit embeddings: each expert tensor 96 x 64 = 6,144 weights
    # x 4 experts at 4 bits = 12,288 B; one token uses 2 of the 4: active 6,144 B
    t = FormatTable.from_dict({"storage_types": {"q4": {"bits_per_weight": 4}, "h": {"bits_per_weight": 16}},
                               "formats": {"q4": {"family": "gptq", "roles": {"default": "q4", "embed": "h",
                                                                             "lm_head": "h", "norm": "h", "router": "h"}}}})
    spec = ModelSpec.from_hf_config(TINY["mixtral-moe"], "mixtral")
    df = tensor_bytes(spec, t, "q4")
    up = df[(df.role == "expert_up") & (df.layer == 0)].iloc[0]
    assert (up["bytes"], up["active_bytes"]) == (12_288, 6_144)
    # everything: embed + lm_head 2 x 128 x 64 x 2 B = 32,768 B; per layer attention 12,288 x 0.5 B
    # = 6,144 B, router 256 x 2 B = 512 B, norms 128 x 2 B = 256 B, experts 3 x 12,288 B = 36,864 B ->
    # 43,776 B x 2 layers; final norm 128 B: 120,448 B
    assert weight_bytes(spec, t, "q4") == 32_768 + 2 * 43_776 + 128
    # params: 2 x 8,192 + 2 x (12,288 + 256 + 128 + 73,728) + 64 = 189,248
    assert bits_per_weight(spec, t, "q4") == pytest.approx(120_448 * 8 / 189_248)


def test_a_storage_type_keeps_its_source():
    st = FormatTable.from_dict({"storage_types": {"a": {"bits_per_weight": "4", "per_out_row_bits": None,
                                                        "source": "here"}},
                                "formats": {}}).storage["a"]
    assert st == StorageType("a", 4.0, 0.0, 0.0, "here")
    t = FormatTable.from_dict({"storage_types": {"a": {"bits_per_weight": 4}},
                               "formats": {"w": {"family": "gptq", "roles": {"default": "a"}}}})
    assert t.storage["a"] == StorageType("a", 4.0, 0.0, 0.0, "")  # no source given: empty, not None
    assert (t.get("w").notes, t.get("w").source, t.get("w").label) == ("", "", "w")
    fmt = FormatTable.from_dict({"storage_types": {"a": {"bits_per_weight": 4}},
                                 "formats": {"w": {"family": "gptq", "label": "W", "compute_dtype": "fp8",
                                                   "roles": {"default": "a"}, "notes": "n", "source": "s",
                                                   "more_bits": {"roles": ["attn_v"], "storage_type": "a"}}}}).get("w")
    assert (fmt.label, fmt.compute_dtype, fmt.notes, fmt.source, fmt.more_bits_roles, fmt.more_bits_type) == (
        "W", "fp8", "n", "s", ("attn_v",), "a")


def test_every_derived_variant_by_hand():
    """The variants FormatTable builds from their names (planner/formats.py _DERIVED), each bit count by hand;
    the roles other than the quantized default stay the template's."""
    from planner import profiles
    t = profiles.formats()

    def sto(fid):
        f = t.get(fid)
        st = t.storage_type(dict(f.roles)["default"])
        return f, st, (st.id, st.bits_per_weight, st.per_out_row_bits, st.per_in_col_bits)

    # compressed-tensors W8A16 group 64, symmetric: 8 + 16 / 64 = 8.25 bits; no zero, no g_idx
    assert t.wna16(8, 64) == "w8a16-g64"
    f, st, row = sto("w8a16-g64")
    assert row == ("int8_g64", 8.25, 0.0, 0.0)
    assert (f.family, f.label, f.kernel, dict(f.roles)["lm_head"]) == ("compressed-tensors", "W8A16 g64", "gptq", "bf16")
    # W4A16 per channel, asymmetric: 4 bits, one 16-bit scale + 4-bit zero per output row (20 bits)
    assert t.wna16(4, -1, symmetric=False) == "w4a16-channel-asym"
    assert sto("w4a16-channel-asym")[2] == ("int4_channel_asym", 4.0, 20.0, 0.0)
    # W4A16 group 32, asymmetric, actorder: 4 + (16 + 4) / 32 = 4.625 bits, an int32 g_idx per input column
    assert t.wna16(4, 32, symmetric=False, actorder=True) == "w4a16-g32-asym-actorder"
    assert sto("w4a16-g32-asym-actorder")[2] == ("int4_g32_asym_gidx", 4.625, 0.0, 32.0)
    # NVFP4 with 32-weight groups: 4 + 8 / 32 = 4.25 bits (an fp8 scale per group); 16 is the bundled one
    assert (t.nvfp4(16), t.nvfp4(32)) == ("nvfp4", "nvfp4-g32")
    f, st, row = sto("nvfp4-g32")
    assert row == ("nvfp4_g32", 4.25, 0.0, 0.0) and f.label == "NVFP4 group 32" and f.family == "nvfp4"
    # block fp8 64 x 64: 8 + 32 / 4,096 bits (an fp32 scale per block); 128 x 128 is the bundled one
    assert (t.fp8_block([128, 128], "f"), t.fp8_block((64, 64), "f")) == ("fp8-block", "fp8-block-64x64")
    f, st, row = sto("fp8-block-64x64")
    assert row == ("fp8_e4m3_block64x64", 8 + 32 / 4096, 0.0, 0.0) and f.label == "FP8 block 64x64"
    for bad in ([128], [0, 128], [True, 1], "128x128", [128, 1 << 17]):
        with pytest.raises(PlannerInputError) as e:
            t.fp8_block(bad, "config.json:quantization_config.weight_block_size")
        assert e.value.field == "config.json:quantization_config.weight_block_size"
    # AWQ without zero points, group 64: 4 + 16 / 64 = 4.25 bits, no g_idx (AWQ has none)
    assert t.gptq_awq("awq", 4, 64, zero_point=False) == "awq-4bit-g64-nozp"
    f, st, row = sto("awq-4bit-g64-nozp")
    assert row == ("awq_4b_g64_nozp", 4.25, 0.0, 0.0) and f.label == "AWQ 4-bit g64" and f.family == "awq"
    # GPTQ 3-bit per channel: 3 bits, a 16-bit scale + 3-bit zero per row (19), g_idx 32 per column
    assert sto(t.gptq_awq("gptq", 3, -1))[2] == ("gptq_3b_perchannel", 3.0, 19.0, 32.0)
    for bits in (1, 9):
        with pytest.raises(PlannerInputError) as e:
            t.gptq_awq("gptq", bits, 128)
        assert (e.value.field, e.value.fix) == ("config.json:quantization_config.bits", "use 2 to 8 bits")
    # names that are not a variant, or a variant out of range, are refused by name
    for fid in ("w9a16-g64", "nvfp4-g0", "fp8-block-0x64", "gptq-4bit-g0", "int4"):
        with pytest.raises(PlannerInputError):
            t.get(fid)
    for sid in ("int9_g64", "nvfp4_g0", "mystery"):
        with pytest.raises(PlannerInputError):
            t.storage_type(sid)
    assert t.storage_type("int4_g32_asym_gidx") == sto("w4a16-g32-asym-actorder")[1]
