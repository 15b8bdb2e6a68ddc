"""KV-cache bytes per layer kind, per KV dtype and per engine layout.

The seed's formula, ``2 (K and V) x layers x kv_heads x head_dim x tokens x batch x bytes``,
generalised per layer kind (docs/formulas.md, section "KV cache"). Each kind is one frozen class in
planner/layerkinds.py that owns its bytes per token, its fixed state per sequence, its attention FLOPs and
its rounding rule; this module groups a model's layers by equal specs (``layer_groups``) and evaluates
grids of batch x context:

* full attention (MHA / GQA / MQA): ``kv_heads_per_rank x (head_dim + v_head_dim) x bytes`` per token;
* sliding window / chunked local: the same per token, but only a window of tokens is held;
* MLA (DeepSeek): one latent of ``kv_lora_rank + qk_rope_head_dim`` per token, replicated on every
  TP rank (vLLM's MLAAttentionSpec; transformers 5.x caches the same latent); sparse MLA adds the
  indexer's key per token;
* linear attention / SSM (Qwen3-Next, Qwen3.5, Jamba, Nemotron-H): a fixed state per sequence.

Two engine layouts:

* ``transformers``: its cache classes (``transformers/cache_utils.py``): a DynamicLayer keeps
  every token, a DynamicSlidingWindowLayer the last ``sliding_window - 1``.
* ``paged`` (vLLM v1, ``vllm/v1/kv_cache_interface.py``): blocks of ``block_size`` tokens, rounded
  up per sequence; a sliding layer needs at most ``window - 1 + max_num_batched_tokens`` tokens
  plus one block; KV heads split across TP ranks, at least one per rank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .errors import PlannerInputError
from .layerkinds import (
    ChunkedLocal,
    FullAttention,
    LayerCache,
    SlidingWindow,
    layer_spec,
    layer_specs,
)
from .spec import CHUNKED, SLIDING, ModelSpec

ENGINES = ("transformers", "paged")


@dataclass(frozen=True)
class KvDtype:
    """Storage of one cached element. ``bits`` includes per-group scale/zero overhead."""

    name: str
    bits: float
    source: str

    @property
    def bytes_per_element(self) -> float:
        """Bytes per cached element, scales included: bf16 2, fp8 1, int4 (4 + 32/64) / 8 = 0.5625."""
        return self.bits / 8


KV_DTYPES: dict[str, KvDtype] = {
    d.name: d
    for d in (
        KvDtype("fp32", 32, "IEEE 754 single precision"),
        KvDtype("fp16", 16, "IEEE 754 half precision"),
        KvDtype("bf16", 16, "bfloat16"),
        # vLLM fp8 KV cache: e4m3/e5m2 elements with a per-tensor (per-layer) scale: 8 bits each.
        KvDtype("fp8", 8, "vLLM docs, 'Quantized KV Cache' (fp8_e4m3 / fp8_e5m2, per-tensor scales)"),
        # transformers QuantizedCache (HQQ/quanto backends): per-channel groups of q_group_size=64
        # with an fp16 scale and an fp16 zero point each: nbits + 32/64 bits per element.
        KvDtype("int8", 8 + 32 / 64, "transformers cache_utils.QuantizedLayer (q_group_size=64, fp16 scale+zero)"),
        KvDtype("int4", 4 + 32 / 64, "transformers cache_utils.QuantizedLayer (nbits=4, q_group_size=64, fp16 scale+zero)"),
    )
}

# vLLM defaults (vllm/config: CacheConfig.block_size=16; SchedulerConfig max_num_batched_tokens
# 8192 for the V1 engine on a GPU server); both can be overridden per call.
PAGED_BLOCK_SIZE = 16
PAGED_MAX_NUM_BATCHED_TOKENS = 8192


def kv_dtype(name: str) -> KvDtype:
    key = str(name).lower().replace("bfloat16", "bf16").replace("float", "fp")
    aliases = {"auto": "bf16", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "half": "fp16"}
    key = aliases.get(key, key)
    if key not in KV_DTYPES:
        raise PlannerInputError("kv_dtype", f"unknown KV dtype {name!r}", f"choose one of {', '.join(KV_DTYPES)}")
    return KV_DTYPES[key]


@dataclass(frozen=True)
class KvGroup:
    """Layers that cache alike: same kind, same window, same bytes per token."""

    kind: str
    layers: int
    window: int             # 0 when the layer keeps every token
    bytes_per_token: float  # per layer, per sequence, on one TP rank
    bytes_per_seq: float    # fixed state per layer, per sequence (SSM / linear attention)


@lru_cache(maxsize=4096)
def layer_groups(spec: ModelSpec, kv_dtype_name: str = "bf16", engine: str = "paged", tp: int = 1,
                 state_bytes: float = 2.0) -> tuple[KvGroup, ...]:
    """Reduce a model to a few cache groups: layers whose cache specs (planner/layerkinds.py) are equal.
    ``state_bytes``: element size of SSM states (model dtype). Layers that cache nothing are left out.
    Remembered per argument set (every argument is immutable, the groups too): a plan asks for them a few
    times, and a search over a model's deployments hundreds of times for the same few."""
    if engine not in ENGINES:
        raise PlannerInputError("engine", f"unknown engine {engine!r}", f"choose one of {', '.join(ENGINES)}")
    b = kv_dtype(kv_dtype_name).bits / 8
    counts: dict = {}
    for ls in layer_specs(spec):
        if ls is not None:
            counts[ls] = counts.get(ls, 0) + 1
    return tuple(KvGroup(ls.kind, n, ls.window, ls.bytes_per_token(b, tp, engine),
                         ls.state_bytes(state_bytes, tp, engine, elem_bytes=b)) for ls, n in counts.items())


_RULES = {SLIDING: SlidingWindow, CHUNKED: ChunkedLocal}  # the layer-kind classes that own a group's rounding rule
# The shape (heads, KV heads, head_dim, v_head_dim) of the probe layer ``tokens_held`` builds: its rounding
# rule reads only the window, so any shape serves.
_PROBE_SHAPE = (1, 1, 1, 1)


@lru_cache(maxsize=256)
def _probe(kind: str, window: int):
    """The layer whose rounding rule a group of ``kind`` and ``window`` follows (its shape is never read)."""
    cls = _RULES.get(kind, FullAttention)
    if window and cls is FullAttention:  # a windowed group of another kind rounds like a sliding one
        cls = SlidingWindow
    return cls(*_PROBE_SHAPE, window) if window else FullAttention(*_PROBE_SHAPE)


def tokens_held(group: KvGroup, context, engine: str, block_size: int = PAGED_BLOCK_SIZE,
                max_num_batched_tokens: int = PAGED_MAX_NUM_BATCHED_TOKENS):
    """Tokens one sequence of ``context`` tokens holds in one layer of ``group`` (vectorised): the rounding rule
    of the group's layer kind (planner/layerkinds.py, with worked examples)."""
    if group.bytes_per_token == 0:
        return np.zeros(np.shape(context))
    return _probe(group.kind, group.window).tokens_held(context, engine, block_size, max_num_batched_tokens)


@lru_cache(maxsize=4096)
def attention_groups(spec: ModelSpec, tp: int, frac: float = 1.0) -> tuple[tuple[str, int, int, float], ...]:
    """(kind, layers on the stage, window, FLOPs per query token per visible key) per attention kind: the one
    place attention FLOPs come from (timing.py reads it). Remembered per argument set, as ``layer_groups``."""
    counts: dict = {}
    for ls in layer_specs_all(spec):
        if isinstance(ls, LayerCache):
            counts[ls] = counts.get(ls, 0) + 1
    return tuple((ls.kind, int(round(n * frac)) or 1, ls.attention_window, float(ls.attention_flops_per_token(1.0, tp)))
                 for ls, n in counts.items())


def layer_specs_all(spec: ModelSpec) -> tuple:
    """Every layer's attention or state spec, KV-sharing layers included (they still attend)."""
    return tuple(layer_spec(replace(spec, kv_shared_layers=0), i) if spec.kv_shared(i) else layer_spec(spec, i)
                 for i in range(spec.num_layers))


def kv_cache_bytes(groups: tuple[KvGroup, ...], batch, context, engine: str = "paged",
                   block_size: int = PAGED_BLOCK_SIZE, max_num_batched_tokens: int = PAGED_MAX_NUM_BATCHED_TOKENS):
    """Bytes of cache for ``batch`` sequences of ``context`` tokens each, on one rank (vectorised)."""
    total = 0.0
    for g in groups:
        held = tokens_held(g, context, engine, block_size, max_num_batched_tokens)
        total = total + g.layers * (held * g.bytes_per_token + g.bytes_per_seq)
    return np.multiply(batch, total)


def kv_cache_bytes1(groups: tuple[KvGroup, ...], batch: float, context: float, engine: str = "paged",
                    block_size: int = PAGED_BLOCK_SIZE,
                    max_num_batched_tokens: int = PAGED_MAX_NUM_BATCHED_TOKENS) -> float:
    """``kv_cache_bytes`` of one batch and context in plain floats, equal to it to the bit (the layer kinds'
    ``tokens_held1``): what a simulated pass asks for."""
    total = 0.0
    for g in groups:
        held = (_probe(g.kind, g.window).tokens_held1(float(context), engine, block_size, max_num_batched_tokens)
                if g.bytes_per_token != 0 else 0.0)
        total = total + g.layers * (held * g.bytes_per_token + g.bytes_per_seq)
    return float(batch) * total


def kv_bytes_per_token(groups: tuple[KvGroup, ...]) -> float:
    """All layers' cache bytes for one more token, for a context shorter than every window."""
    return float(sum(g.layers * g.bytes_per_token for g in groups))


def kv_state_bytes_per_seq(groups: tuple[KvGroup, ...]) -> float:
    return float(sum(g.layers * g.bytes_per_seq for g in groups))


def describe(groups: tuple[KvGroup, ...]) -> list[dict]:
    return [{"kind": g.kind, "layers": g.layers, "window": g.window or None,
             "bytes_per_token_per_layer": g.bytes_per_token, "state_bytes_per_seq_per_layer": g.bytes_per_seq}
            for g in groups]


def seed_kv_bytes(spec: ModelSpec, kv_dtype_name: str, batch: int, context: int) -> dict[str, float]:
    """The textbook KV formula (the seed's, every layer full MHA/GQA, no paging, no TP):
    ``2 x layers x kv_heads x head_dim x context x batch x bytes_per_element`` (2: K and V), bytes.
    ``bytes_per_element`` is the KV dtype's (``KV_DTYPES``, group scales included). The planner's own
    figure (``kv_cache_bytes``) differs where the layer kinds, the layout or TP do; the dashboard
    shows both. Llama-3.1-8B, bf16, 1 x 4,096 tokens: 2 x 32 x 8 x 128 x 4096 x 1 x 2 = 536,870,912 B."""
    bpe = kv_dtype(kv_dtype_name).bytes_per_element
    return {"bytes": 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * context * batch * bpe,
            "bytes_per_element": bpe, "layers": spec.num_layers, "kv_heads": spec.num_kv_heads,
            "head_dim": spec.head_dim}
