"""The figures the dashboard used to compute itself, now the core's: the MLA and no-window what-ifs,
the textbook KV formula, KV curves, the GGUF offload curve (issue 12: the dashboard renders)."""

from __future__ import annotations

import numpy as np
import pytest

from planner import api, kv, profiles, whatif

LLAMA = "Llama-3.1-8B"
pytestmark = pytest.mark.skipif(LLAMA not in profiles.model_names(), reason="needs the bundled Llama-3.1-8B")


def test_bytes_per_element_come_from_the_kv_dtype_table():
    # bf16 2 B; fp8 1 B; int4 is 4 bits plus an fp16 scale and zero per group of 64: (4 + 32/64) / 8 = 0.5625 B
    assert kv.kv_dtype("bf16").bytes_per_element == 2
    assert kv.kv_dtype("fp8").bytes_per_element == 1
    assert kv.kv_dtype("int4").bytes_per_element == 0.5625
    assert kv.kv_dtype("int8").bytes_per_element == 1.0625  # (8 + 32/64) / 8


def test_seed_formula_known_values():
    spec = profiles.load_model(LLAMA)  # 32 layers, 8 KV heads of 128
    # 2 x 32 x 8 x 128 x 4096 x 1 x 2 B = 536,870,912 B (512 MiB)
    assert kv.seed_kv_bytes(spec, "bf16", 1, 4096)["bytes"] == 536_870_912
    # int4: 268,435,456 elements x 0.5625 B = 150,994,944 B; not 1 B per element
    assert kv.seed_kv_bytes(spec, "int4", 1, 4096)["bytes"] == 150_994_944
    # linear in batch: 4 x the bf16 figure
    assert kv.seed_kv_bytes(spec, "bf16", 4, 4096)["bytes"] == 4 * 536_870_912


def test_the_seed_formula_is_the_planners_for_a_plain_gqa_model():
    # Llama-3.1-8B has only full attention layers: the transformers layout holds exactly the context
    spec = profiles.load_model(LLAMA)
    curve = api.kv_curve(spec, "bf16", "transformers", 1, 1, (4096,))
    assert curve[0] == kv.seed_kv_bytes(spec, "bf16", 1, 4096)["bytes"]


def test_mla_what_if_uses_deepseek_v3s_latent_sizes():
    if "DeepSeek-V3" in profiles.model_names():
        ds = profiles.load_model("DeepSeek-V3")
        assert (ds.kv_lora_rank, ds.qk_rope_head_dim) == (whatif.MLA_WHAT_IF.kv_lora_rank,
                                                          whatif.MLA_WHAT_IF.qk_rope_head_dim) == (512, 64)
    spec = profiles.load_model(LLAMA)
    mla = whatif.attention_variant(spec, whatif.MLA_KIND)
    assert mla.is_mla and "[MLA what-if]" in mla.name
    # per token: 32 layers x (512 + 64) x 2 B = 36,864 B, against GQA's 32 x 2 x 8 x 128 x 2 B = 131,072 B
    per_token = kv.kv_bytes_per_token(kv.layer_groups(mla, "bf16", "transformers"))
    assert per_token == 36_864
    assert kv.kv_bytes_per_token(kv.layer_groups(spec, "bf16", "transformers")) == 131_072
    assert whatif.cached_per_token_per_layer(mla) == "latent 512 + rope 64"


def test_variants_offered():
    spec = profiles.load_model(LLAMA)  # GQA (8 of 32 heads): as shipped is the GQA row, no window to drop
    kinds = [k for k, _ in whatif.attention_variants(spec)]
    assert kinds == [whatif.AS_SHIPPED, "32", "1", whatif.MLA_KIND]
    assert whatif.attention_variant(spec, "1").num_kv_heads == 1


def test_no_window_what_if_makes_every_layer_full():
    windowed = [n for n in profiles.model_names() if profiles.load_model(n).sliding_window]
    if not windowed:
        pytest.skip("no bundled model with a sliding window")
    spec = profiles.load_model(windowed[0])
    full = whatif.attention_variant(spec, whatif.NO_WINDOW)
    assert full.sliding_window == 0 and not {"sliding", "chunked"} & set(full.layer_kinds)
    assert (whatif.NO_WINDOW, "no sliding window (all full)") in whatif.attention_variants(spec)
    long = (1 << 17,)
    assert api.kv_curve(full, "bf16", "paged", 1, 1, long)[0] >= api.kv_curve(spec, "bf16", "paged", 1, 1, long)[0]


def test_offload_curve_is_the_timing_models_and_rises_with_layers_on_the_gpu():
    if "Q4_K_M" not in profiles.formats().formats or "RTX-4090" not in profiles.gpus():
        pytest.skip("needs Q4_K_M and RTX-4090")
    best, df = api.gguf_offload_curve(LLAMA, "RTX-4090", "Q4_K_M", 4096)
    assert df["gpu_layers"].iloc[0] == 0 and df["gpu_layers"].iloc[-1] == best["layers"]
    assert best["gpu_layers"] in set(df["gpu_layers"])
    np.testing.assert_allclose(df["tokens_per_s"], 1 / df["decode_step_s"])
    assert df["tokens_per_s"].is_monotonic_increasing  # every layer moved off the host is read faster
    assert (df["fits_on_gpu"] == (df["gpu_layers"] <= best["gpu_layers"])).all()
