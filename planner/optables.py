"""Measured per-operator latencies of a serving engine on a GPU, interpolated (planner/opgrid.py).

Source: NVIDIA aiconfigurator (ai-dynamo/aiconfigurator @095f58a, Apache-2.0), per-op tables of
vLLM on H100/H200/B200 SXM, GB200, RTX PRO 6000 SE and L40S (vLLM 0.24; L40S all-reduce 0.22) and A100 SXM
(0.14), carried as CSV slices in profiles/reference (its README names every source file and the selection).

Every figure is **one call on one GPU (one TP rank), one layer**, in seconds:

* ``gemm``: one ``(m x k) @ (k x n)`` GEMM, m = tokens in the step; n, k as the rank holds them.
* ``attention_decode`` / ``attention_prefill``: one attention layer; ``heads`` and ``kv_heads`` are
  per rank (``num_heads / tp``, ``max(1, kv_heads / tp)``); decode ``context`` = tokens already
  cached per sequence (the kernel reads ``context + 1`` keys); prefill of ``isl`` new tokens, causal.
* ``moe``: the fused-MoE experts of one layer on one rank (routing top-k and experts, no router GEMM,
  no all-to-all); ``tokens`` entering the layer on that rank, model-wide ``experts`` and
  ``moe_intermediate`` (the rank holds ``experts / ep`` experts, each ``moe_intermediate / tp`` wide).
* ``mla_decode`` / ``mla_prefill``: the whole MLA attention module of DeepSeek-V3 (q/kv low-rank
  projections, attention, o_proj) with ``heads`` per rank.
* ``allreduce``: vLLM's ``tensor_model_parallel_all_reduce`` of ``message_bytes`` over ``ranks``.

SGLang's own tables (SGLang 0.5.9 on H100 / H200, ``OpTables.load(gpu, "sglang")``) hold the same GEMM,
attention, MoE and all-reduce calls timed through SGLang's kernels, and its MLA as AIC measured it for
SGLang: the attention kernel alone (``mla_generation`` / ``mla_context``) and the absorbed BMMs around
decode attention (``mla_bmm``). ``mla_decode`` / ``mla_prefill`` compose those with the projection GEMMs
as AIC's own SGLang model does (aic-core ``sdk/models/deepseek.py``, the generation path
"MLABmm + GenerationMLA + MLABmm" between the fused q_a/kv_a, q_b and o projections; the context path
with kv_b too), so both engines answer the same question: the whole MLA module of one layer.

Each op returns an ``Estimate`` (seconds, whether the query was inside the measured grid, the
datasheet roofline of the same call, the source); ``<op>_s`` returns the seconds alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from . import kv as kvmod
from . import oproof as roof
from . import profiles
from .engines import Version
from .errors import PlannerInputError
from .gpus import GpuSpec
from .opgrid import LogGrid

SOURCE = "ai-dynamo/aiconfigurator @095f58a (Apache-2.0)"
AIC_ROOT = "aic-core/src/aiconfigurator_core/systems/data"
# Our GPU profile ids (profiles/gpus/<id>.json) -> AIC system names.
SYSTEMS = {"H100-SXM": "h100_sxm", "H200": "h200_sxm", "A100-SXM-80GB": "a100_sxm", "B200": "b200_sxm",
           "GB200": "gb200", "RTX-PRO-6000-SE": "rtx_pro_6000_server", "L40S": "l40s"}
# engine -> table name in our files -> the AIC file it was cut from (under <gpu>/)
AIC_FILES = {
    "vllm": {"gemm": "gemm/vllm/{v}/gemm_perf.parquet",
             "generation_attention": "attention/vllm/{v}/generation_attention_perf.parquet",
             "context_attention": "attention/vllm/{v}/context_attention_perf.parquet",
             "moe": "moe/vllm/{v}/moe_perf.parquet",
             "mla_generation_module": "mla/vllm/{v}/mla_generation_module_perf.parquet",
             "mla_context_module": "mla/vllm/{v}/mla_context_module_perf.parquet",
             "allreduce": "comm/vllm/{v}/custom_allreduce_perf.parquet"},
    "sglang": {"gemm": "gemm/sglang/{v}/gemm_perf.parquet",
               "generation_attention": "attention/sglang/{v}/generation_attention_perf.parquet",
               "context_attention": "attention/sglang/{v}/context_attention_perf.parquet",
               "moe": "moe/sglang/{v}/moe_perf.parquet",
               "mla_generation": "mla/sglang/{v}/generation_mla_perf.parquet",
               "mla_context": "mla/sglang/{v}/context_mla_perf.parquet",
               "mla_bmm": "mla_bmm/sglang/{v}/mla_bmm_perf.parquet",
               "allreduce": "comm/sglang/{v}/custom_allreduce_perf.parquet"},
}
ENGINES = tuple(AIC_FILES)
DTYPE_ALIASES = {"bfloat16": "bf16", "fp16": "bf16", "float16": "bf16", "half": "bf16", "fp8_e4m3": "fp8",
                 "int4": "w4a16", "int4_wo": "w4a16", "awq": "w4a16", "gptq": "w4a16", "mxfp4": "w4a16_mxfp4"}
ALLREDUCE_ELEMENT_BYTES = 2.0  # AIC's message_size counts bfloat16 elements (collect_all_reduce.py)
_TABLE_NAMES = sorted({op for ops in AIC_FILES.values() for op in ops}, key=len, reverse=True)  # longest first
# vLLM's files name their release in three digits (aic_vllm024: 0.24), SGLang's in full (aic_sglang-0.5.9)
_NAME = re.compile(r"aic_(" + "|".join(ENGINES) + r")(\d\d\d|-\d+\.\d+\.\d+)_(" + "|".join(SYSTEMS.values()) + ")_("
                   + "|".join(_TABLE_NAMES) + r")_(\w+)\.csv$")


@dataclass(frozen=True)
class Estimate:
    """Latency of one call (seconds), per query element."""

    seconds: np.ndarray
    inside: np.ndarray      # True: inside the measured grid (every weighted corner measured)
    roofline_s: np.ndarray  # datasheet bound max(FLOPs / peak, bytes / bandwidth) of the same call
    source: str             # carried file and the AIC file and commit it was cut from
    borrowed: str = ""      # MoE: the measured shape whose efficiency an unmeasured one borrows ("": its own)


@dataclass(frozen=True)
class OpTables:
    """The measured tables of one GPU and engine; ``files``: (op, dtype, version, file name)."""

    gpu: GpuSpec
    engine: str
    files: tuple[tuple[str, str, str, str], ...]

    @classmethod
    def load(cls, gpu_id: str, engine: str = "vllm", version: str | None = None) -> OpTables | None:
        """The newest carried table of each op (at or below ``version`` when given, e.g. "0.14");
        None when the GPU has none."""
        if engine not in AIC_FILES:
            raise PlannerInputError("engine", f"no measured operator tables for {engine!r}",
                                    f"use one of {', '.join(ENGINES)}")
        gpu = profiles.gpu(gpu_id)
        folder = profiles.reference_dir()
        if gpu.id not in SYSTEMS or folder is None:
            return None
        cap = _version_key(version) if version else (99, 99, 99)
        best: dict[tuple[str, str], tuple[tuple[int, int, int], str]] = {}
        for name in profiles.reference_names(folder):
            m = _NAME.match(name)
            if not (m and m.group(1) == engine and m.group(3) == SYSTEMS[gpu.id] and m.group(4) in AIC_FILES[engine]):
                continue
            ver = _file_version(m.group(2))
            if ver <= cap:
                key = (m.group(4), m.group(5))
                if key not in best or ver > best[key][0]:
                    best[key] = (ver, name)
        if not best:
            return None
        files = tuple(sorted((op, dt, ".".join(map(str, v)), name) for (op, dt), (v, name) in best.items()))
        return cls(gpu, engine, files)

    # ---- what is carried ---------------------------------------------------------------------
    @property
    def provenance(self) -> dict[str, str]:
        """``"<op> <dtype>"`` -> the carried file and the AIC file and commit it was cut from."""
        return {f"{op} {dt}": self._source(op, dt) for op, dt, _, _ in self.files}

    def dtypes(self, op: str) -> tuple[str, ...]:
        return tuple(dt for o, dt, _, _ in self.files if o == op)

    def table(self, op: str, dtype: str) -> pd.DataFrame:
        """The carried rows of ``op`` (a table of AIC_FILES) in ``dtype``, as in the CSV."""
        return _frame(self._file(op, _dtype(dtype), "dtype"))

    def _file(self, op: str, dtype: str, field: str) -> str:
        for o, dt, _, name in self.files:
            if o == op and dt == dtype:
                return name
        have = ", ".join(self.dtypes(op)) or "none"
        raise PlannerInputError(field, f"no measured {op} table for {dtype!r} on {self.gpu.id} (carried: {have})",
                                "choose a carried dtype, or use the roofline (planner/timing.py)")

    def _source(self, op: str, dtype: str) -> str:
        _, _, ver, name = next(f for f in self.files if f[0] == op and f[1] == dtype)
        aic = AIC_FILES[self.engine][op].format(v=ver)
        return f"profiles/reference/{name} ({SOURCE}, {AIC_ROOT}/{SYSTEMS[self.gpu.id]}/{aic})"

    def _estimate(self, grid: LogGrid, op: str, dtype: str, *no_call: str, **query) -> Estimate:
        """``no_call``: the query fields that launch nothing when 0 (no tokens, no sequences): 0 s."""
        seconds, inside, bound = grid(**query)
        idle = np.zeros(seconds.shape, dtype=bool)
        for f in no_call:
            idle |= np.broadcast_to(query[f] == 0, seconds.shape)
        return Estimate(np.where(idle, 0.0, seconds), inside, np.where(idle, 0.0, bound), self._source(op, dtype))

    # ---- the ops -----------------------------------------------------------------------------
    def gemm(self, m, n, k, dtype: str = "bf16") -> Estimate:
        dt = _dtype(dtype)
        grid = _grid(self.gpu.id, self._file("gemm", dt, "dtype"), "gemm", dt)
        est = self._estimate(grid, "gemm", dt, "m", m=_size("m", m), n=_size("n", n), k=_size("k", k))
        if dt == "fp8_block" and "fp8" in self.dtypes("gemm"):
            # A block-scaled fp8 GEMM reads the weights of a per-tensor one (plus a scale per 128 x 128 block) and
            # the two tables agree where the GEMM does work (H200, m = 8,192, 7,168 x 7,168: 0.716 vs 0.679 ms; B200
            # 0.356 vs 0.366 ms). Below 32 rows the fp8_block rows carry a flat floor the per-tensor and bf16 rows of
            # the same shapes do not: 58-62 us on H100 / H200 and 0.15-0.28 ms on B200 at m = 1-17 for any n, k
            # (H200, 1 x 512 x 7,168: bf16 6.4 us, fp8 9.9 us, fp8_block 59 us), the collector's eager launch and
            # activation-quantization calls, which an engine's CUDA-graph decode does not pay. So a block-scaled GEMM
            # is taken at most as slow as the per-tensor fp8 GEMM of the same shape.
            flat = self.gemm(m, n, k, "fp8")
            est = replace(est, seconds=np.minimum(est.seconds, flat.seconds))
        return est

    def gemm_s(self, m, n, k, dtype: str = "bf16") -> np.ndarray:
        return self.gemm(m, n, k, dtype).seconds

    def attention_decode(self, batch, context, heads, kv_heads, head_dim, kv_dtype: str = "bf16") -> Estimate:
        return self._attention("generation_attention", batch, context, heads, kv_heads, head_dim, kv_dtype, "context")

    def attention_decode_s(self, batch, context, heads, kv_heads, head_dim, kv_dtype: str = "bf16") -> np.ndarray:
        return self.attention_decode(batch, context, heads, kv_heads, head_dim, kv_dtype).seconds

    def attention_prefill(self, batch, isl, heads, kv_heads, head_dim, kv_dtype: str = "bf16") -> Estimate:
        return self._attention("context_attention", batch, isl, heads, kv_heads, head_dim, kv_dtype, "isl")

    def attention_prefill_s(self, batch, isl, heads, kv_heads, head_dim, kv_dtype: str = "bf16") -> np.ndarray:
        return self.attention_prefill(batch, isl, heads, kv_heads, head_dim, kv_dtype).seconds

    def _attention(self, op, batch, length, heads, kv_heads, head_dim, kv_dtype, length_field) -> Estimate:
        dt = _kv_dtype(kv_dtype)
        grid = _grid(self.gpu.id, self._file(op, dt, "kv_dtype"), op, dt)
        h, kvh = _size("heads", heads, positive=True), _size("kv_heads", kv_heads, positive=True)
        no_call = ("batch",) if op == "generation_attention" else ("batch", "length")
        return self._estimate(grid, op, dt, *no_call, batch=_size("batch", batch), length=_size(length_field, length),
                              group=h / kvh, kv_heads=kvh, head_dim=_size("head_dim", head_dim, positive=True))

    def moe(self, tokens, hidden, moe_intermediate, experts, topk, tp: int = 1, ep: int = 1, dtype: str = "bf16",
            distribution: str = "balanced") -> Estimate:
        """One MoE layer on one rank. The shape arguments are scalars; a shape AIC did not measure
        takes the efficiency of the nearest measured one (log distance of the per-rank shape,
        ``oproof.moe_features``) times its own roofline, and is flagged not inside."""
        dt = _dtype(dtype)
        name = self._file("moe", dt, "dtype")
        shapes = _moe_shapes(name, distribution)
        if not len(shapes):
            have = ", ".join(sorted(_frame(name)["distribution"].unique()))
            raise PlannerInputError("distribution", f"{distribution!r} not measured for MoE {dt} on {self.gpu.id}",
                                    f"choose one of {have}")
        shape = np.array([[_scalar(f, x) for f, x in zip(roof.MoeShape._fields, (
            hidden, moe_intermediate, experts, topk, tp, ep), strict=True)]])
        grid = _grid(self.gpu.id, name, "moe", dt, distribution)
        t = _size("tokens", tokens)
        seconds, inside, bound, near = moe_transfer(self.gpu, dt, grid, shapes, shape, t)
        seconds, bound = np.where(t == 0, 0.0, seconds), np.where(t == 0, 0.0, bound)
        source = self._source("moe", dt)
        borrowed = "" if near is None else str(roof.MoeShape(*(int(x) for x in shapes[near])))
        if borrowed:
            source += ", scaled from the measured shape " + borrowed
        return Estimate(seconds, inside, bound, source, borrowed)

    def moe_s(self, tokens, hidden, moe_intermediate, experts, topk, tp: int = 1, ep: int = 1, dtype: str = "bf16",
              distribution: str = "balanced") -> np.ndarray:
        return self.moe(tokens, hidden, moe_intermediate, experts, topk, tp, ep, dtype, distribution).seconds

    def mla_decode(self, batch, context, heads, kv_dtype: str = "bf16", gemm_dtype: str = "bf16") -> Estimate:
        return self._mla_layer(True, batch, context, heads, kv_dtype, gemm_dtype)

    def mla_decode_s(self, batch, context, heads, kv_dtype: str = "bf16", gemm_dtype: str = "bf16") -> np.ndarray:
        return self.mla_decode(batch, context, heads, kv_dtype, gemm_dtype).seconds

    def mla_prefill(self, batch, isl, heads, kv_dtype: str = "bf16", gemm_dtype: str = "bf16") -> Estimate:
        return self._mla_layer(False, batch, isl, heads, kv_dtype, gemm_dtype)

    def mla_prefill_s(self, batch, isl, heads, kv_dtype: str = "bf16", gemm_dtype: str = "bf16") -> np.ndarray:
        return self.mla_prefill(batch, isl, heads, kv_dtype, gemm_dtype).seconds

    def _mla_layer(self, decode: bool, batch, length, heads, kv_dtype, gemm_dtype) -> Estimate:
        """One MLA layer: vLLM's measured module, or SGLang's composed from its parts (``_mla_granular``)."""
        dt, gd = _kv_dtype(kv_dtype), _dtype(gemm_dtype)
        if gd not in ("bf16", "fp8_block"):
            raise PlannerInputError("gemm_dtype", f"MLA projections were measured in bf16 or fp8_block, not {gemm_dtype!r}",
                                    "choose bf16 or fp8-block")
        module = "mla_generation_module" if decode else "mla_context_module"
        if not self.dtypes(module) and self.dtypes("mla_generation" if decode else "mla_context"):
            return self._mla_granular(decode, batch, length, heads, dt, gd)
        return self._mla(module, batch, length, heads, dt, gd, "context" if decode else "isl")

    def _mla(self, op, batch, length, heads, dt, gd, length_field) -> Estimate:
        grid = _grid(self.gpu.id, self._file(op, dt, "kv_dtype"), op, dt, gd)
        no_call = ("batch",) if op == "mla_generation_module" else ("batch", "length")
        return self._estimate(grid, op, dt, *no_call, batch=_size("batch", batch), length=_size(length_field, length),
                              heads=_size("heads", heads, positive=True))

    def _mla_granular(self, decode: bool, batch, length, heads, dt: str, gd: str) -> Estimate:
        """SGLang's MLA module of one layer from its parts, with DeepSeek-V3's dimensions (the model AIC timed
        every MLA table on; ``oproof.MLA_MODEL``), as AIC composes it for SGLang (aic-core
        ``sdk/models/deepseek.py``, ``generation_mla_granular`` and the context MLA block): the fused q_a + kv_a
        projection (hidden -> q_lora + kv_lora + rope), q_b (q_lora -> heads x (nope + rope)), then at decode the
        absorbed BMM into the latent, the attention kernel over the latent cache and the BMM back to v, at
        prefill kv_b (kv_lora -> heads x (nope + v)) and causal attention, and o_proj (heads x v -> hidden).
        The absorbed BMMs run in fp8 when the projections do (the rule of the same file); the layer norms and
        RoPE between them are left out, as AIC leaves them out of this path. One difference: AIC reads the attention
        kernel at DeepSeek's 128 heads / TP for every MLA model (``_MLA_KERNEL_TABLE_NATIVE_HEADS``); here it is read
        at the plan's own heads per rank, as the BMMs and projections are."""
        m = profiles.load_model(roof.MLA_MODEL)
        b, n = _size("batch", batch), _size("context" if decode else "isl", length)
        h = _size("heads", heads, positive=True)
        tokens = b if decode else b * n
        qk, latent = m.qk_nope_head_dim + m.qk_rope_head_dim, m.kv_lora_rank + m.qk_rope_head_dim
        parts = [self.gemm(tokens, m.q_lora_rank + latent, m.hidden_size, gd),
                 self.gemm(tokens, h * qk, m.q_lora_rank, gd),
                 self.gemm(tokens, m.hidden_size, h * m.v_head_dim, gd)]
        op = "mla_generation" if decode else "mla_context"
        attn = self._estimate(_grid(self.gpu.id, self._file(op, dt, "kv_dtype"), op, dt), op, dt,
                              *(("batch",) if decode else ("batch", "length")), batch=b, length=n, heads=h)
        parts.append(attn)
        if decode:
            bmm = "fp8" if gd == "fp8_block" else "bf16"
            name = self._file("mla_bmm", bmm, "gemm_dtype")
            for side in ("mla_gen_pre", "mla_gen_post"):
                parts.append(self._estimate(_grid(self.gpu.id, name, "mla_bmm", bmm, side), "mla_bmm", bmm, "tokens",
                                            tokens=tokens, heads=h))
        else:
            parts.append(self.gemm(tokens, h * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank, gd))
        seconds = sum(np.broadcast_to(p.seconds, attn.seconds.shape) for p in parts)
        inside = np.logical_and.reduce([np.broadcast_to(p.inside, attn.seconds.shape) for p in parts])
        bound = sum(np.broadcast_to(p.roofline_s, attn.seconds.shape) for p in parts)
        return Estimate(seconds, inside, bound, "; ".join(dict.fromkeys(p.source for p in parts)))

    def allreduce(self, message_bytes, ranks, cuda_graph: bool = True) -> Estimate:
        """One all-reduce of ``message_bytes`` (bf16 payload) over ``ranks`` GPUs; 0 s for one rank."""
        grid = _grid(self.gpu.id, self._file("allreduce", "bf16", "gpu"), "allreduce", "bf16",
                     f"{self.engine}_graph" if cuda_graph else f"{self.engine}_eager")
        return self._estimate(grid, "allreduce", "bf16", message_bytes=_size("message_bytes", message_bytes),
                              ranks=_size("ranks", ranks))

    def allreduce_s(self, message_bytes, ranks, cuda_graph: bool = True) -> np.ndarray:
        return self.allreduce(message_bytes, ranks, cuda_graph).seconds


# ---- inputs ----------------------------------------------------------------------------------------
def _version_key(version: str) -> tuple[int, int, int]:
    return Version.parse(version, "version").parts


def _file_version(tag: str) -> tuple[int, int, int]:
    """The release in a carried file's name: vLLM's ``024`` is 0.24 (major, two-digit minor), SGLang's
    ``-0.5.9`` 0.5.9."""
    if tag.startswith("-"):
        return Version.parse(tag[1:], "file").parts
    return int(tag[0]), int(tag[1:]), 0


def _dtype(name: str) -> str:
    key = str(name).lower().replace("-", "_")
    return DTYPE_ALIASES.get(key, key)


def _kv_dtype(name: str) -> str:
    bits = kvmod.kv_dtype(name).bits
    if bits not in (16, 8) or kvmod.kv_dtype(name).name == "int8":
        raise PlannerInputError("kv_dtype", f"no measured attention for a {name!r} KV cache", "choose bf16 or fp8")
    return "bf16" if bits == 16 else "fp8"


def _scalar(field: str, x) -> float:
    v = float(np.asarray(x, dtype=float))
    if not np.isfinite(v) or v <= 0:
        raise PlannerInputError(field, f"must be a number > 0, got {x!r}", f"give a positive {field}")
    return v


def _size(field: str, x, positive: bool = False) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if np.any(~np.isfinite(a)) or np.any(a <= 0 if positive else a < 0):
        low = "> 0" if positive else ">= 0"
        raise PlannerInputError(field, f"must be a finite number {low}, got {x!r}", f"give {field} {low}")
    return a


# ---- tables, built once per file ---------------------------------------------------------------------
def _frame(name: str) -> pd.DataFrame:
    return profiles.reference_table(profiles.reference_dir(), name)


@lru_cache(maxsize=256)  # about 20 tables per GPU
def _grid(gpu_id: str, name: str, op: str, dtype: str, variant: str = "") -> LogGrid:
    return build_grid(profiles.gpu(gpu_id), op, dtype, _frame(name), variant)


@lru_cache(maxsize=64)
def _moe_shapes(name: str, distribution: str) -> np.ndarray:
    d = _frame(name)
    return moe_shapes(d[d["distribution"] == distribution])


def moe_transfer(gpu: GpuSpec, dtype: str, grid: LogGrid, shapes: np.ndarray, shape: np.ndarray, tokens):
    """A MoE ``shape`` (one row of MoeShape) from the table ``grid`` of ``shapes``: its own curve when
    measured; else the nearest measured shape's efficiency times its own roofline, never below it, nor
    below the fastest call measured on any shape of the table: the kernel's fixed cost (routing, sorting
    and two grouped GEMMs launched; vLLM's Marlin experts take >= 40 us a call on H200 however small the
    work, while a tiny shape's roofline scaled by a larger one's efficiency says 11 us).
    Returns seconds, inside, roofline and the index of the shape borrowed from (None when exact)."""
    dist = ((roof.moe_features(shapes) - roof.moe_features(shape)) ** 2).sum(axis=1)
    near = int(np.argmin(dist))
    seconds, inside, near_bound = grid(tokens=tokens, shape_id=near + 1)
    if dist[near] < 1e-12:
        return seconds, inside, near_bound, None
    bound = roof.moe(gpu, dtype, shape)({"tokens": tokens, "shape_id": 1})
    floor = float(np.exp(grid.log_s[grid.measured].min()))
    return np.maximum(seconds * bound / near_bound, np.maximum(bound, floor)), np.zeros_like(inside), bound, near


def moe_shapes(d: pd.DataFrame) -> np.ndarray:
    """The distinct MoE shapes of a table, in MoeShape column order (row i has shape_id i + 1)."""
    return np.unique(d[MOE_SHAPE_COLS].to_numpy(float), axis=0)


MOE_SHAPE_COLS = ["hidden_size", "inter_size", "num_experts", "topk", "moe_tp_size", "moe_ep_size"]


def _moe_columns(c: dict, shapes: np.ndarray | None) -> dict:
    rows = np.stack([c[k] for k in MOE_SHAPE_COLS], axis=1)
    ids = {tuple(r): i + 1 for i, r in enumerate((np.unique(rows, axis=0) if shapes is None else shapes).tolist())}
    return {"tokens": c["num_tokens"], "shape_id": np.array([ids.get(tuple(r), 0) for r in rows.tolist()], dtype=float)}


def _attention_columns(length: str):
    return lambda c, _: {"length": c[length], "batch": c["batch_size"],
                         "group": c["num_heads"] / c["num_key_value_heads"], "kv_heads": c["num_key_value_heads"],
                         "head_dim": c["head_dim"]}


def _mla_roofline(decode: bool, module: bool = True):
    """vLLM's whole MLA module (its GEMM type the table's variant), or SGLang's attention kernel alone."""
    if module:
        return lambda gpu, dt, variant, _: roof.mla(gpu, dt, variant, decode, profiles.load_model(roof.MLA_MODEL))
    return lambda gpu, dt, variant, _: roof.mla_attention(gpu, dt, decode, profiles.load_model(roof.MLA_MODEL))


@dataclass(frozen=True)
class TableKind:
    """How one kind of carried table becomes a LogGrid: its CSV columns -> grid coordinates (size
    axes first), the column naming a variant, and its datasheet roofline (planner/oproof.py)."""

    size_axes: tuple[str, ...]
    columns: Callable[[dict, np.ndarray | None], dict]
    roofline: Callable[[GpuSpec, str, str, np.ndarray | None], roof.OpRoofline]
    variant_column: str = ""


TABLES = {
    "gemm": TableKind(("m",), lambda c, _: {"m": c["m"], "n": c["n"], "k": c["k"]},
                      lambda gpu, dt, v, _: roof.gemm(gpu, dt)),
    "generation_attention": TableKind(("length", "batch"), _attention_columns("step"),
                                      lambda gpu, dt, v, _: roof.attention_decode(gpu, dt)),
    "context_attention": TableKind(("length", "batch"), _attention_columns("isl"),
                                   lambda gpu, dt, v, _: roof.attention_prefill(gpu, dt)),
    "moe": TableKind(("tokens",), _moe_columns, lambda gpu, dt, v, shapes: roof.moe(gpu, dt, shapes), "distribution"),
    # the module's generation step counts the new token too (collect_mla_module.py: seq_lens=[seq_len])
    "mla_generation_module": TableKind(("length", "batch"), lambda c, _: {
        "length": c["step"] - 1, "batch": c["batch_size"], "heads": c["num_heads"]}, _mla_roofline(True), "gemm_type"),
    "mla_context_module": TableKind(("length", "batch"), lambda c, _: {
        "length": c["isl"], "batch": c["batch_size"], "heads": c["num_heads"]}, _mla_roofline(False), "gemm_type"),
    # SGLang's MLA attention kernel alone (collector/sglang/collect_mla.py: decode ``step`` = cached tokens, the
    # kernel reading step + 1; context ``isl`` new tokens) and its absorbed BMMs (collect_mla_bmm.py)
    "mla_generation": TableKind(("length", "batch"), lambda c, _: {
        "length": c["step"], "batch": c["batch_size"], "heads": c["num_heads"]}, _mla_roofline(True, module=False)),
    "mla_context": TableKind(("length", "batch"), lambda c, _: {
        "length": c["isl"], "batch": c["batch_size"], "heads": c["num_heads"]}, _mla_roofline(False, module=False)),
    "mla_bmm": TableKind(("tokens",), lambda c, _: {"tokens": c["num_tokens"], "heads": c["num_heads"]},
                         lambda gpu, dt, v, _: roof.mla_bmm(gpu, dt, profiles.load_model(roof.MLA_MODEL)), "op_name"),
    "allreduce": TableKind(("message_bytes",), lambda c, _: {
        "message_bytes": c["message_size"] * ALLREDUCE_ELEMENT_BYTES, "ranks": c["num_gpus"]},
        lambda gpu, dt, v, _: roof.allreduce(gpu), "backend"),
}


def table_columns(op: str, d: pd.DataFrame, variant: str = "",
                  shapes: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The grid coordinates and seconds of the carried rows ``d`` of ``op`` (a key of TABLES).
    ``variant``: the GEMM type of an MLA table, the backend of an all-reduce table, the distribution
    of a MoE table; ``shapes``: the MoE shapes that number ``shape_id`` (default: those of ``d``;
    rows of a shape not among them are left out)."""
    kind = TABLES[op]
    if kind.variant_column:
        d = d[d[kind.variant_column] == variant]
    c = {name: d[name].to_numpy(float) for name in d.columns if name != kind.variant_column}
    cols = kind.columns(c, shapes)
    keep = cols["shape_id"] > 0 if "shape_id" in cols else np.ones(len(d), dtype=bool)
    return {a: v[keep] for a, v in cols.items()}, c["latency_ms"][keep] / 1e3


def op_roofline(gpu: GpuSpec, op: str, dtype: str, variant: str = "", shapes: np.ndarray | None = None):
    """The datasheet roofline (planner/oproof.py) of one call of ``op`` on ``gpu``."""
    return TABLES[op].roofline(gpu, dtype, variant, shapes)


def build_grid(gpu: GpuSpec, op: str, dtype: str, d: pd.DataFrame, variant: str = "") -> LogGrid:
    """The LogGrid of the carried rows ``d`` of ``op`` (see table_columns)."""
    shapes = moe_shapes(d[d["distribution"] == variant]) if op == "moe" else None
    cols, s = table_columns(op, d, variant, shapes)
    return LogGrid.build(cols, s, tuple(cols), TABLES[op].size_axes, op_roofline(gpu, op, dtype, variant, shapes))
