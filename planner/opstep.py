"""A forward pass timed from measured operator latencies (planner/optables.py), not a roofline.

For a GPU with AIC's measured tables, one engine step of a plan is the sum, over the layers of the
fullest pipeline stage on one TP rank, of its operators at the step's shape:

* token-proportional ops at T tokens in the step: the QKV, O, gate/up and down GEMMs (sharded by TP,
  in the weights' GEMM dtype), the router GEMM, the shared experts, the fused MoE experts
  (``moe``, AIC's default power-law routing), two all-reduces per layer at TP > 1;
* decode attention of the batch at its context (per rank heads, capped by a sliding window),
  and the causal prefill attention of the step's chunk, with the share of a full prefill's work a
  chunk after a prefix does (``p (prefix + p/2) / (ctx^2 / 2)``);
* MLA layers: the measured whole MLA module (its projections included);
* the LM head GEMM over the sampled rows.

The sums are precomputed once per plan on log-spaced grids (tokens, batch x context, prefill
context, rows) and interpolated, so a simulation step costs a few interpolations (``OpCurves.step1``: about
10 us in plain floats, equal to the vectorised ``step_s`` to the bit). A plan whose
GPU has no tables, or whose layers or formats the tables do not cover (linear attention, Mamba,
4-bit GEMMs), keeps the roofline (``timing.TimingModel``); ``OpCurves.build`` returns None then and
says why in ``why_not``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import kv as kvmod
from .errors import PlannerInputError
from .memory import Deployment, stage_layers
from .optables import ENGINES as TABLE_ENGINES
from .optables import OpTables
from .spec import FULL, MLA, SLIDING, ModelSpec

# weight format family -> GEMM table dtype (None: no measured GEMM of that kind)
# weight format -> the table its GEMMs / experts were timed in. AIC's fp8 GEMM is vLLM's CUTLASS scaled_mm
# (CutlassFP8ScaledMMLinearKernel), the kernel of per-tensor and per-channel fp8 alike; nvfp4 (Blackwell only)
# FlashInfer's CuTe-DSL NVFP4 GEMM and TRT-LLM's NVFP4 experts (profiles/reference/README.md)
GEMM_DTYPE = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp8-tensor": "fp8", "fp8-block": "fp8_block",
              "nvfp4": "nvfp4"}
MOE_DTYPE = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp8-tensor": "fp8", "fp8-block": "fp8_block",
             "mxfp4": "w4a16_mxfp4", "awq": "w4a16", "gptq": "w4a16", "nvfp4": "nvfp4"}
# AIC's default routing for MoE tables: sdk/config.py:37 workload_distribution "power_law" (alpha 1.01)
MOE_DISTRIBUTION = "power_law_1.01"


def _grid(top: float, per_octave: int = 4) -> np.ndarray:
    n = int(np.ceil(np.log2(max(top, 2)) * per_octave)) + 1
    return np.unique(np.round(np.logspace(0, np.log2(max(top, 2)), n, base=2.0)))


def _interp(x, grid: np.ndarray, values: np.ndarray):
    """Piecewise linear in log(x); 0 work costs 0; beyond the grid, linear in x from the last point."""
    x = np.asarray(x, dtype=float)
    lx = np.log(np.maximum(x, 1.0))
    out = np.interp(lx, np.log(grid), values)
    beyond = x > grid[-1]
    out = np.where(beyond, values[-1] * x / grid[-1], out)
    return np.where(x <= 0, 0.0, out)


def _interp1(x: float, grid: list[float], lgrid: list[float], values: list[float]) -> float:
    """``_interp`` of one value in plain floats (``lgrid``: the grid's logs): np.interp's arithmetic, the
    slope of the bracketing points times the distance from the lower one, so the two agree to the bit."""
    if x <= 0:
        return 0.0
    if x > grid[-1]:
        return values[-1] * x / grid[-1]
    lx = float(np.log(max(x, 1.0)))  # numpy's log, as _interp takes it
    if lx <= lgrid[0]:
        return values[0]
    if lx >= lgrid[-1]:
        return values[-1]
    j = bisect_right(lgrid, lx) - 1
    return (values[j + 1] - values[j]) / (lgrid[j + 1] - lgrid[j]) * (lx - lgrid[j]) + values[j]


@dataclass(frozen=True)
class OpCurves:
    tokens: np.ndarray        # grid of tokens per step
    token_ops_s: np.ndarray   # GEMMs + MoE + all-reduces at those tokens, all stage layers
    batch: np.ndarray
    context: np.ndarray
    decode_attn_s: np.ndarray  # [batch, context]: decode attention of every attention layer
    prefill_attn_s: np.ndarray  # [context]: causal prefill of a whole prompt of that length
    rows: np.ndarray
    lm_head_s: np.ndarray
    source: str
    borrowed_moe: str = ""     # the measured MoE shape whose efficiency this model's experts borrow ("": own or none)

    def step_s(self, decode_batch, decode_context, prefill_tokens=0, prefill_context=0):
        """Seconds of one forward pass (vectorised like ``TimingModel.step``)."""
        b = np.asarray(decode_batch, dtype=float)
        ctx = np.asarray(decode_context, dtype=float)
        pt = np.asarray(prefill_tokens, dtype=float)
        pctx = np.maximum(np.asarray(prefill_context, dtype=float), pt)
        tokens = b + pt
        t = _interp(tokens, self.tokens, self.token_ops_s)
        t = t + self._decode_attention(b, ctx + 1)
        full = _interp(pctx, self.context, self.prefill_attn_s)
        share = np.where(pctx > 0, pt * (pctx - pt / 2) / np.maximum(pctx * pctx / 2, 1e-9), 0.0)
        t = t + full * np.clip(share, 0, 1)
        rows = b + (pt > 0)
        return t + _interp(rows, self.rows, self.lm_head_s)

    @cached_property
    def _lists(self) -> dict:
        """The curves as plain lists, for ``step1``."""
        return {"tokens": self.tokens.tolist(), "ltokens": np.log(self.tokens).tolist(),
                "token_ops": self.token_ops_s.tolist(), "batch": self.batch.tolist(),
                "lbatch": np.log(self.batch).tolist(), "context": self.context.tolist(),
                "lcontext": np.log(self.context).tolist(), "decode_attn": self.decode_attn_s.tolist(),
                "prefill_attn": self.prefill_attn_s.tolist(), "rows": self.rows.tolist(),
                "lrows": np.log(self.rows).tolist(), "lm_head": self.lm_head_s.tolist()}

    def step1(self, b: float, ctx: float, pt: float = 0.0, pctx: float = 0.0) -> float:
        """``step_s`` of one pass in plain floats, equal to it to the bit: a simulation asks for one pass at a
        time, where numpy's per-call overhead was most of the cost (200 us a pass on a TP-2 plan)."""
        c = self._lists
        pctx = max(pctx, pt)
        t = _interp1(b + pt, c["tokens"], c["ltokens"], c["token_ops"])
        t = t + self._decode_attention1(b, ctx + 1)
        full = _interp1(pctx, c["context"], c["lcontext"], c["prefill_attn"])
        share = pt * (pctx - pt / 2) / max(pctx * pctx / 2, 1e-9) if pctx > 0 else 0.0
        t = t + full * min(max(share, 0.0), 1.0)
        return t + _interp1(b + (1.0 if pt > 0 else 0.0), c["rows"], c["lrows"], c["lm_head"])

    def _decode_attention1(self, b: float, ctx: float) -> float:
        """``_decode_attention`` of one batch and context in plain floats (the same arithmetic)."""
        if b <= 0:
            return 0.0
        c = self._lists
        lb, lc, batch, context = c["lbatch"], c["lcontext"], c["batch"], c["context"]
        xb = float(np.log(min(max(b, 1.0), batch[-1])))
        xc = float(np.log(min(max(ctx, 1.0), context[-1])))
        i = min(max(bisect_left(lb, xb) - 1, 0), len(lb) - 2)
        j = min(max(bisect_left(lc, xc) - 1, 0), len(lc) - 2)
        wb = (xb - lb[i]) / (lb[i + 1] - lb[i])
        wc = (xc - lc[j]) / (lc[j + 1] - lc[j])
        d = c["decode_attn"]
        val = ((1 - wb) * (1 - wc) * d[i][j] + wb * (1 - wc) * d[i + 1][j]
               + (1 - wb) * wc * d[i][j + 1] + wb * wc * d[i + 1][j + 1])
        return val * (max(b / batch[-1], 1.0) * max(ctx / context[-1], 1.0))

    def _decode_attention(self, b, ctx):
        """Bilinear in (log batch, log context); beyond the grids, linear in batch and in context."""
        b, ctx = np.broadcast_arrays(np.asarray(b, dtype=float), np.asarray(ctx, dtype=float))
        lb, lc = np.log(self.batch), np.log(self.context)
        xb = np.log(np.clip(b, 1, self.batch[-1]))
        xc = np.log(np.clip(ctx, 1, self.context[-1]))
        i = np.clip(np.searchsorted(lb, xb) - 1, 0, len(lb) - 2)
        j = np.clip(np.searchsorted(lc, xc) - 1, 0, len(lc) - 2)
        wb = (xb - lb[i]) / (lb[i + 1] - lb[i])
        wc = (xc - lc[j]) / (lc[j + 1] - lc[j])
        d = self.decode_attn_s
        val = ((1 - wb) * (1 - wc) * d[i, j] + wb * (1 - wc) * d[i + 1, j]
               + (1 - wb) * wc * d[i, j + 1] + wb * wc * d[i + 1, j + 1])
        scale = np.maximum(b / self.batch[-1], 1.0) * np.maximum(ctx / self.context[-1], 1.0)
        return np.where(b <= 0, 0.0, val * scale)

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def build(cls, spec: ModelSpec, dep: Deployment, gpu_id: str, weights_family: str, gemm_kind: str,
              kv_dtype_name: str, version: str | None = None) -> tuple[OpCurves | None, str]:
        """The curves of one plan, or (None, why the roofline is kept)."""
        # the newest tables: kernels change less between releases than the engine's scheduling does
        from . import profiles
        if gpu_id not in profiles.gpus():
            return None, f"{gpu_id} is not a bundled GPU: no measured operator tables"
        if any(k not in (FULL, SLIDING, MLA) for k in spec.layer_kinds) or spec.attn_overrides or spec.kv_shared_layers:
            return None, ("linear-attention / Mamba / chunked / sparse / MLP-only layers and per-kind attention shapes "
                          "are not in the measured tables")
        kvd = "fp8" if kvmod.kv_dtype(kv_dtype_name).bits == 8 else "bf16"
        # the engine's own tables where they are carried and cover the plan (SGLang on H100 / H200), else vLLM's:
        # the kernels of one engine stand for another's (TensorRT-LLM's plans; SGLang's gpt-oss MXFP4 experts)
        own = why = ""  # why the engine's own tables were passed over; why the last ones were
        for engine in dict.fromkeys((dep.server if dep.server in TABLE_ENGINES else "vllm", "vllm")):
            ops = OpTables.load(gpu_id, engine)
            if ops is None:
                why = f"no measured operator tables for {gpu_id}"
            elif (gdt := GEMM_DTYPE.get(gemm_kind)) is None or gdt not in ops.dtypes("gemm"):
                why = f"no measured GEMM for {gemm_kind} weights on {gpu_id}"
            else:
                try:
                    mdt = moe_dtype(weights_family, gdt, dep, ops.dtypes("moe"))
                    return cls._build(spec, dep, ops, gdt, mdt, kvd, own), ""
                except PlannerInputError as e:
                    why = f"measured tables do not cover this plan ({e.problem})"
            if engine == dep.server:
                own = why
        return None, why

    @classmethod
    def _build(cls, s: ModelSpec, dep: Deployment, ops: OpTables, gdt: str, mdt: str, kvd: str,
               passed_over: str = "") -> OpCurves:
        """``passed_over``: why the plan's own engine's tables were not used (``ops`` is then vLLM's)."""
        tp, h = dep.tp, s.hidden_size
        layers = int(stage_layers(s.num_layers, dep.pp).max())
        frac = layers / s.num_layers
        kinds = s.layer_kinds
        n_mla = round(sum(k == MLA for k in kinds) * frac)
        n_attn = round(sum(k != MLA for k in kinds) * frac)
        n_moe = round(sum(s.moe_layers) * frac)
        n_dense = layers - n_moe
        heads, kvh = max(1, s.num_heads // tp), max(1, s.num_kv_heads // tp)
        top = max(dep.mnbt + dep.seqs, 2 * dep.mnbt)
        tokens = _grid(top)
        g = lambda n, k: ops.gemm_s(tokens, n, k, gdt)  # noqa: E731
        tok = np.zeros_like(tokens)
        if n_attn:
            qkv = (heads + 2 * kvh) * s.head_dim
            tok += n_attn * (g(qkv, h) + g(h, heads * s.head_dim))
        if n_dense and s.intermediate_size:
            tok += n_dense * (g(2 * s.intermediate_size // tp, h) + g(h, s.intermediate_size // tp))
        moe_note = borrowed = ""
        if n_moe:
            moe = ops.moe(tokens, h, s.moe_intermediate_size, s.num_experts, s.experts_per_token, tp=tp,
                          dtype=mdt, distribution=_distribution(ops, mdt))
            tok += n_moe * moe.seconds
            borrowed = moe.borrowed
            if borrowed:  # no measurement of this expert shape: say whose efficiency it borrows
                moe_note = (f" (MoE experts, {mdt}: this model's per-rank expert shape was not measured; its time is "
                            f"its roofline x the efficiency of the nearest measured shape, {borrowed})")
            tok += n_moe * ops.gemm_s(tokens, s.num_experts, h, "bf16")  # router
            if s.shared_expert_intermediate_size:
                si = s.shared_expert_intermediate_size // tp
                tok += n_moe * (g(2 * si, h) + g(h, si))
        if tp > 1:
            tok += 2 * layers * ops.allreduce_s(tokens * h * 2.0, tp)
        batch = _grid(max(dep.seqs, 2), 2)
        context = _grid(1 << 18, 2)
        dec = np.zeros((len(batch), len(context)))
        pre = np.zeros(len(context))
        windows = [(s.sliding_window if k == SLIDING else 0) for k in kinds if k != MLA]
        for w, count in ((w, round(windows.count(w) * frac)) for w in set(windows)):
            if not count:
                continue
            for j, c in enumerate(context):
                cc = min(c, w) if w else c
                dec[:, j] += count * ops.attention_decode_s(batch, cc, heads, kvh, _hd(s), kvd)
            cc = np.minimum(context, w) if w else context
            pre += count * np.array([ops.attention_prefill_s(1, c, heads, kvh, _hd(s), kvd) for c in cc]) * (context / cc)
        if n_mla:
            mla_gemm = "fp8_block" if gdt == "fp8_block" else "bf16"
            for j, c in enumerate(context):
                dec[:, j] += n_mla * ops.mla_decode_s(batch, c, heads, kvd, mla_gemm)
            pre += n_mla * np.array([ops.mla_prefill_s(1, c, heads, kvd, mla_gemm) for c in context])
        rows = _grid(max(dep.seqs, 2) + 1, 2)
        lm = ops.gemm_s(rows, max(1, s.vocab_size // tp), s.word_embed_proj_dim or h, "bf16")
        own = f" ({ops.engine}'s kernels: {dep.server}'s {passed_over})" if passed_over else ""
        src = "measured operator tables" + own + moe_note + ": " + "; ".join(sorted(set(ops.provenance.values())))[:400]
        return cls(tokens, tok, batch, context, dec, pre, rows, lm, src, borrowed)


def moe_dtype(weights_family: str, gemm_dtype: str, dep: Deployment, measured: tuple[str, ...] = ()) -> str:
    """The MoE table of a plan's experts. MXFP4 experts with ``mxfp4_moe_backend`` "marlin" run vLLM's
    Marlin W4A16 kernel (VLLM_MXFP4_USE_MARLIN=1: fused_moe/oracle/mxfp4.py, "Handle explicit Marlin MXFP4
    configuration"), timed by AIC for int4 and Kimi-K3's MXFP4 (``w4a16_marlin``); by default vLLM runs
    gpt-oss's MXFP4 on Hopper with OpenAI's Triton kernel (TRITON_MONOLITHIC), the one AIC timed on its
    shapes (``w4a16_mxfp4``, kernel_source ``..._oaitritonmxfp4expertsmonolithic``). On gpt-oss-120b's
    experts (H100 / H200, TP 1-8) Marlin comes out 0.6-1.2x Triton's time at 1-1024 tokens and 1.8-2.3x at
    an 8192-token prefill chunk: Marlin's rows never pass 250 TFLOPS, Triton's reach 414.

    TensorRT-LLM on Blackwell runs MXFP4 experts with MXFP8 activations (examples/models/core/gpt_oss/README.md,
    "MoE Support Matrix": Blackwell, activation mxfp8, moe_backend CUTLASS or TRTLLM; Hopper bf16 on TRITON):
    AIC timed that kernel, TRT-LLM's own through FlashInfer (``w4a8_mxfp4_mxfp8``, on B200 and GB200), where
    ``measured`` (the GPU's carried expert tables) has it. vLLM's default there stays bf16 activations
    (vllm/model_executor/layers/quantization/mxfp4.py get_mxfp4_backend: SM100_FI_MXFP4_BF16 unless
    VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8)."""
    if marlin_mxfp4(weights_family, dep):
        return "w4a16_marlin"
    if weights_family == "mxfp4" and dep.server == "trtllm" and "w4a8_mxfp4_mxfp8" in measured:
        return "w4a8_mxfp4_mxfp8"
    return MOE_DTYPE.get(weights_family, gemm_dtype)


def marlin_mxfp4(weights_family: str, dep: Deployment) -> bool:
    """Whether the plan's experts run on vLLM's Marlin kernel for MXFP4 (VLLM_MXFP4_USE_MARLIN=1)."""
    return weights_family == "mxfp4" and dep.mxfp4_moe_backend == "marlin"


def _hd(s: ModelSpec) -> int:
    return s.head_dim


def _distribution(ops: OpTables, mdt: str) -> str:
    import contextlib
    with contextlib.suppress(PlannerInputError):
        ops.moe_s(1, 4096, 1536, 128, 8, dtype=mdt, distribution=MOE_DISTRIBUTION)
        return MOE_DISTRIBUTION
    return "balanced"


def _minor(version: str | None) -> str | None:
    if not version:
        return None
    parts = str(version).split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None
