"""Bundled weight formats against published checkpoint sizes (docs/weight-formats.md section 4).

The figures are llama.cpp's own size tables and the Hugging Face Hub's file sizes; the planner's
per-tensor rules must land on them, so a change to a storage type or a GGUF mix shows up here.
"""

import pytest
from test_kv_known import LLAMA31_8B

from planner import profiles
from planner.formats import bits_per_weight, format_from_quantization_config, weight_bytes
from planner.spec import ModelSpec

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
TABLE = profiles.formats()

# llama.cpp tools/quantize/README.md @311c2c9, table "meta-llama/Llama-3.1-8B": bits per weight
LLAMA31_8B_GGUF_BPW = {"Q2_K": 3.1593, "Q3_K_S": 3.6429, "Q4_K_S": 4.6672, "Q4_K_M": 4.8944,
                       "Q5_K_S": 5.5704, "Q5_K_M": 5.7036, "Q6_K": 6.5633, "Q8_0": 8.5008}
# llama-quantize --help (tools/quantize/quantize.cpp @03161a4, QUANT_OPTIONS) for Llama-3-8B, GiB (2^30)
LLAMA3_8B_GGUF_GIB = {"Q4_0": 4.34, "Q3_K_M": 3.74}


@pytest.mark.parametrize("fmt,bpw", sorted(LLAMA31_8B_GGUF_BPW.items()))
def test_gguf_bits_per_weight_match_llama_cpp_table(fmt, bpw):
    assert bits_per_weight(SPEC, TABLE, fmt) == pytest.approx(bpw, abs=5e-4)


@pytest.mark.parametrize("fmt,gib", sorted(LLAMA3_8B_GGUF_GIB.items()))
def test_gguf_sizes_match_quantize_help(fmt, gib):
    assert weight_bytes(SPEC, TABLE, fmt) / 2**30 == pytest.approx(gib, abs=0.01)


@pytest.mark.parametrize("fmt,gb", [("awq-4bit-g128", 5.73), ("gptq-4bit-g128", 5.73), ("fp8", 9.08)])
def test_gpu_formats_match_hub_checkpoint_sizes(fmt, gb):
    # hugging-quants/Meta-Llama-3.1-8B-Instruct-{AWQ,GPTQ}-INT4 and neuralmagic/...-FP8 file sizes (GB = 1e9)
    assert weight_bytes(SPEC, TABLE, fmt) / 1e9 == pytest.approx(gb, abs=0.02)


def test_embeddings_and_lm_head_stay_16_bit_in_gptq():
    # 2 x 128256 x 4096 x 2 bytes = 2.1 GB of 16-bit embed + lm_head; the 4-bit body is the rest
    emb = 2 * 128256 * 4096 * 2
    body_params = 8_030_261_248 - 2 * 128256 * 4096
    assert weight_bytes(SPEC, TABLE, "gptq-4bit-g128") > emb + body_params * 4 / 8


def test_bits_shrink_with_the_format():
    order = ["fp32", "bf16", "fp8", "bnb-int8", "Q6_K", "bnb-nf4", "Q4_K_M", "Q3_K_M", "Q2_K"]
    sizes = [weight_bytes(SPEC, TABLE, f) for f in order]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("qc,expected", [
    ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "gptq-4bit-g128"),
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"}, "awq-4bit-g128"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
      "bnb_4bit_use_double_quant": True}, "bnb-nf4-dq"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-int8"),
])
def test_quantization_config_is_read_as_its_format(qc, expected):
    spec = ModelSpec.from_hf_config({**LLAMA31_8B, "quantization_config": qc}, "q")
    assert format_from_quantization_config(spec, TABLE) == expected


def test_every_storage_type_cites_a_source():
    raw = profiles._read_json(profiles.ROOT / "weight_formats.json", "weight_formats.json")
    for name, st in raw["storage_types"].items():
        assert st.get("source"), name
