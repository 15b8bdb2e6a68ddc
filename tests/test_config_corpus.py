"""Every public config of tests/data/hub-configs (index.json says where each one came from) is read: the planner
answers (parameters, KV bytes) or refuses in one line naming the feature it does not model. Where transformers
can read a config (corpus and bundled), the planner's normalised fields equal transformers' own config object:
hidden size, layers, heads, KV heads, head_dim, vocabulary, layer types, sliding window, experts, top-k.
"""

import json
import math
from pathlib import Path

import pytest

from planner import kv, profiles
from planner.errors import PlannerInputError
from planner.params import param_breakdown, params_total
from planner.spec import ModelSpec
from profiler.metacount import config_differences

DATA = Path(__file__).resolve().parent / "data" / "hub-configs"
INDEX = json.loads((DATA / "index.json").read_text())
FILES = [e["file"] for e in INDEX]

# The features the planner names when it refuses (docs/config-reading.md, "What is refused").
REFUSED = {
    "MiniMaxAI--MiniMax-M3.json": "MiniMax-M3 sparse attention",
    "RWKV--rwkv-5-world-3b.json": "RWKV time-mix recurrent layers",
    "deepseek-ai--DeepSeek-V4-Flash.json": "DeepSeek-V4 compressed sparse attention",
    "deepseek-ai--DeepSeek-V4-Pro.json": "DeepSeek-V4 compressed sparse attention",
    "nvidia--Llama-3_3-Nemotron-Super-49B-v1.json": "Nemotron-NAS heterogeneous layers",
}
# Where transformers' config object and the planner disagree on purpose, with the reason.
TRANSFORMERS_DIFFERS = {
    "stepfun-ai--Step-3.7-Flash.json": "a flat file for a composite class: transformers builds its text part from the "
                                       "class defaults (vocab 128815, every layer full) and ignores the top-level keys; "
                                       "the planner reads the top level, as the checkpoint was written",
    "Qwen--Qwen3-ASR-0.6B.json": "the release nests its text model at thinker_config.text_config; transformers' "
                                 "Qwen3ASRConfig looks for text_config at the top and builds its default 2,048-wide text "
                                 "model; the planner reads the nested one, which the weights are",
    "falcon-7b": "FalconConfig.num_key_value_heads reports the 71 query heads, while FalconAttention with multi_query "
                 "caches one KV head (the forward-pass check tests/test_kv_forward.py, falcon-mqa, agrees with 1)",
}
# Hand-checked readings of the configs docs/research/config-coverage.md found read but wrong, against the
# sizes their model cards publish: (parameters, KV heads, gated MLP).
READINGS = {
    "bigcode--gpt_bigcode-santacoder.json": (1_124_886_528, 1, False),    # 1.1B, multi_query: one KV head
    "WizardLMTeam--WizardCoder-15B-V1.0.json": (15_517_462_528, 1, False),  # 15.5B
    "THUDM--chatglm3-6b.json": (6_243_584_000, 2, True),                # 6.2B, multi_query_group_num 2
    "THUDM--glm-4-9b-chat.json": (9_399_951_360, 2, True),              # 9.4B
    "Qwen--Qwen-7B-Chat.json": (7_721_324_544, 32, True),               # 7.7B: intermediate_size 22016 = 2 x 11008
    "allenai--Molmo-7B-D-0924.json": (7_615_616_512, 4, True),          # Qwen2-7B body: 37888 = 2 x 18944
    "bigcode--starcoder2-7b.json": (7_173_923_840, 4, False),           # 7.2B, c_fc / c_proj
    "togethercomputer--RedPajama-INCITE-Chat-3B-v1.json": (2_775_864_320, 32, False),  # 2.8B
    "google--gemma-2b.json": (2_506_172_416, 1, True),                  # 2.5B: GemmaConfig ties embeddings
    "CohereForAI--aya-23-8B.json": (8_028_033_024, 8, True),            # 8.0B: CohereConfig ties embeddings
    "microsoft--phi-2.json": (2_779_683_840, 32, False),                # 2.7B: n_inner null = 4 x n_embd
    "EleutherAI--gpt-j-6b.json": (6_050_882_784, 16, False),            # 6B
    "llava-hf--llava-1.5-7b-hf.json": (7_063_427_072, 32, True),        # 7.06B: Llama-2-7B + CLIP-L/336 + projector
}


def _load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def test_the_index_names_every_file_and_its_source():
    on_disk = {p.name for p in DATA.glob("*.json")} - {"index.json"}
    assert on_disk == set(FILES) and len(FILES) == 127
    assert all(e["source"].get("repo") and e["model_id"] for e in INDEX)


@pytest.mark.parametrize("name", FILES)
def test_every_corpus_config_answers_or_names_what_it_lacks(name):
    cfg = _load(name)
    if name in REFUSED:
        with pytest.raises(PlannerInputError) as e:
            ModelSpec.from_hf_config(cfg, name)
        assert REFUSED[name] in str(e.value) and "\n" not in str(e.value) and e.value.field.startswith("config.json")
        return
    spec = ModelSpec.from_hf_config(cfg, name)
    assert params_total(spec) > 0 and sum(param_breakdown(spec).values()) == params_total(spec)
    for engine in ("paged", "transformers"):
        groups = kv.layer_groups(spec, "bf16", engine)
        b = float(kv.kv_cache_bytes(groups, 4, 8192, engine))
        assert math.isfinite(b) and b >= 0
    assert all("\n" not in a for a in spec.assumptions)


def _bundled_and_corpus() -> list[tuple[str, Path]]:
    out = [(f, DATA / f) for f in FILES if f not in REFUSED]
    return out + [(n, profiles.ROOT / "models" / n / "config.json") for n in profiles.model_names()]


@pytest.mark.parametrize("name, path", _bundled_and_corpus(), ids=[n for n, _ in _bundled_and_corpus()])
def test_normalised_fields_equal_transformers_config(name, path):
    cfg = json.loads(path.read_text())
    spec = ModelSpec.from_hf_config(cfg, name)
    try:
        diffs = config_differences(spec, cfg)
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # remote code, or a file transformers refuses
        pytest.skip(f"transformers cannot read it: {type(e).__name__}: {str(e)[:120]}")
    if name in TRANSFORMERS_DIFFERS:
        assert diffs, f"{name} no longer differs: drop it from TRANSFORMERS_DIFFERS"
    else:
        assert diffs == []


@pytest.mark.parametrize("name", sorted(READINGS))
def test_the_configs_read_wrong_before_are_read_right(name):
    spec = ModelSpec.from_hf_config(_load(name), name)
    assert (params_total(spec), spec.num_kv_heads, spec.mlp_gated) == READINGS[name]


def test_layer_patterns_transformers_computes_in_code():
    """Llama 4 (every 4th layer global, chunks of 8192), MiMo-V2 (hybrid_layer_pattern, window 128 + 1),
    Gemma 4 E2B (the last 20 of 35 layers reuse earlier K/V), Nemotron-H (one block per character)."""
    scout = ModelSpec.from_hf_config(_load("meta-llama--Llama-4-Scout-17B-16E-Instruct.json"))
    assert scout.kind_counts() == {"chunked": 36, "full": 12} and scout.attention_chunk_size == 8192
    mimo = ModelSpec.from_hf_config(_load("XiaomiMiMo--MiMo-V2-Flash.json"))
    assert mimo.kind_counts() == {"full": 9, "sliding": 39} and mimo.sliding_window == 129
    e2b = ModelSpec.from_hf_config(_load("google--gemma-4-E2B-it.json"))
    groups = kv.layer_groups(e2b, "bf16", "transformers")
    assert e2b.kv_shared_layers == 20 and sum(g.layers for g in groups) == 15
    nemo = ModelSpec.from_hf_config(_load("nvidia--Nemotron-H-8B-Base-8K.json"))
    assert nemo.kind_counts() == {"mamba": 24, "none": 24, "full": 4}


def test_lfm2_s_short_convolutions_hold_a_state_not_a_kv_cache():
    # LiquidAI/LFM2-1.2B: 16 layers, attention at full_attn_idxs [2, 5, 8, 10, 12, 14] only, short convolutions
    # elsewhere. KV per token: 6 layers x 8 KV heads x 64 x 2 (K, V) x 2 B = 12,288 (every layer attention: 32,768).
    # Per sequence, each of the 10 conv layers keeps its last conv_L_cache - 1 = 2 inputs of 2,048 in vLLM
    # (ShortConv state (L - 1) x hidden): 10 x 2 x 2,048 x 2 B = 81,920; transformers all 3 taps: 122,880.
    # Parameters (Lfm2ForCausalLM, tied): embed 65,536 x 2,048 = 134,217,728; attention 6 x (2 x 2,048^2 +
    # 2 x 2,048 x 512) = 62,914,560; conv 10 x (3 x 2,048^2 + 2,048 x 3 + 2,048^2) = 167,833,600; MLP
    # 16 x 3 x 2,048 x 8,192 (int(2/3 x 12,288), x 1.0, a multiple of 256) = 805,306,368; norms 16 x 2 x 2,048 +
    # 6 x 2 x 64 + 2,048 = 68,352: 1,170,340,608 (the card's 1.2B)
    spec = ModelSpec.from_hf_config(_load("LiquidAI--LFM2-1.2B.json"), "lfm2")
    paged = kv.layer_groups(spec, "bf16", "paged")
    assert kv.kv_bytes_per_token(paged) == 12_288
    assert kv.kv_state_bytes_per_seq(paged) == 81_920
    assert kv.kv_state_bytes_per_seq(kv.layer_groups(spec, "bf16", "transformers")) == 122_880
    assert params_total(spec) == 1_170_340_608 and spec.intermediate_size == 8_192


def test_a_language_model_kept_under_thinker_config_is_the_one_read():
    # Qwen/Qwen3-ASR-0.6B's release nests its text model at thinker_config.text_config (transformers' Qwen3ASRConfig
    # expects text_config at the top, and its default is a 2,048-wide model of 1.7B): read from there, as Qwen3.
    # Parameters: embed 151,936 x 1,024 = 155,582,464 (tied); per layer q 1,024 x 2,048 + k, v 1,024 x 1,024 each +
    # o 2,048 x 1,024 = 6,291,456, MLP 3 x 1,024 x 3,072 = 9,437,184, norms 2 x 1,024 + q/k 2 x 128 = 2,304: 15,730,944
    # x 28 = 440,466,432; final norm 1,024: 596,049,920. KV: 28 x 8 x 128 x 2 x 2 B = 114,688 per token
    spec = ModelSpec.from_hf_config(_load("Qwen--Qwen3-ASR-0.6B.json"), "asr")
    assert (spec.hidden_size, spec.num_layers, spec.qk_norm) == (1024, 28, True)
    assert params_total(spec) == 596_049_920
    assert kv.kv_bytes_per_token(kv.layer_groups(spec, "bf16", "paged")) == 114_688
    assert any("thinker_config.text_config" in a and "audio encoder" in a for a in spec.assumptions)
