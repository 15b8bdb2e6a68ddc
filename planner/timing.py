"""Roofline timing of prefill and decode, vectorised over batch, prompt, output and context.

Every phase: ``time = max(FLOPs / (peak x compute_eff), bytes / (bandwidth x memory_eff))
+ communication + fixed overhead`` (Williams et al., "Roofline", CACM 2009; applied to LLM
inference as in Pope et al., "Efficiently Scaling Transformer Inference", 2022).

* Prefill reads the weights once per chunk (chunked prefill in the paged engine), does
  ``2 x active matmul params`` FLOPs per token plus causal attention, whose FLOPs grow with the
  square of the prompt (capped by sliding windows).
* A decode step reads the weights once (for MoE, the experts the batch's tokens actually touch:
  ``E x (1 - (1 - k/E)^T)`` under uniform routing), plus every sequence's KV cache, and does
  ``2 x active params`` FLOPs per sequence plus attention over the context.
* Quantized weights move fewer bytes but pay for dequantization (``profiles/kernels.json``).
* TP adds two ring all-reduces per layer; PP adds its bubble; GGUF offload runs the
  CPU-resident layers at the host's memory bandwidth.

Efficiencies and overheads are named fields of ``Efficiency``: defaults with their source
(``profiles/kernels.json``), replaced by a per-GPU calibration when one exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from . import kv as kvmod
from .formats import FormatTable, tensor_bytes
from .gpus import GpuSpec
from .memory import Deployment, stage_layers
from .opstep import GEMM_DTYPE, MOE_DTYPE, OpCurves
from .params import inventory
from .spec import ModelSpec


@dataclass(frozen=True)
class Efficiency:
    """Fractions of datasheet peaks a real engine reaches, and fixed costs. See profiles/kernels.json."""

    # the defaults are profiles/kernels.json's efficiency_defaults (tests/test_one_rule.py holds them equal)
    memory: float = 0.8             # achieved / datasheet bandwidth
    compute: float = 0.8            # achieved / datasheet dense tensor-core peak (GEMMs)
    attention_compute: float = 0.0  # same for prefill attention kernels; 0 = use ``compute``
    step_overhead_s: float = 0.0    # per forward pass (scheduler, sampling, launch of the graph)
    layer_overhead_s: float = 3e-6  # per layer per forward pass (kernel launch gaps)
    allreduce_latency_s: float = 10e-6
    eager_layer_overhead_s: float = 0.0  # per layer, for a forward pass larger than every CUDA graph (CPU launches)
    graph_max_tokens: int = 0            # the largest captured CUDA-graph size (0: every pass counts as eager)
    eager_overlaps: bool = True          # the CPU's launches overlap the GPU's work (max) or add to it
    prefill_token_layer_s: float = 0.0   # per prompt token and layer at TP 1, split across TP ranks: the prefill
                                         # time the measured operators miss (fitted per engine end to end)
    allreduce_spread: float = 0.0        # the spread (standard deviation) of the TP ranks' arrival at an all-reduce,
                                         # as a fraction of the decode work before it: each all-reduce waits for the
                                         # slowest rank (fitted per engine)
    sequence_step_s: float = 0.0         # per decoding sequence in a pass: the engine's per-request CPU work each
                                         # step (output processing, streaming; fitted per engine)
    provenance: str = "datasheet"

    @classmethod
    def from_fit(cls, defaults: dict[str, float], fit: dict | None) -> Efficiency:
        """The one efficiency rule: a calibration's fitted fields (profiles/calibration.json, one
        GPU and engine) over the datasheet defaults (profiles/kernels.json); no fit, the defaults."""
        if not fit:
            return cls(**defaults, provenance="datasheet")
        return cls(**{**defaults, **{k: float(fit[k]) for k in FIT_FIELDS if fit.get(k) is not None}}, provenance="calibrated")


# what a calibration fits (planner/calibrate.py); every other field keeps its default
FIT_FIELDS = ("memory", "compute", "attention_compute", "step_overhead_s", "layer_overhead_s")


@dataclass(frozen=True)
class KernelFactor:
    """How a weight format's kernels behave (profiles/kernels.json, per family)."""

    compute_factor: float = 1.0        # multiplies the compute efficiency (dequantization cost)
    memory_factor: float = 1.0         # multiplies the memory efficiency
    dequant_bytes_per_weight: float = 0.0  # extra traffic when weights are dequantized to 16 bit per matmul
    dequant_min_tokens: int = 2        # dequant path only used from this many tokens per step on


@dataclass(frozen=True)
class TimingModel:
    """A model on a GPU reduced to the scalars the timing formulas need (one TP rank, one PP stage)."""

    spec: ModelSpec
    gpu: GpuSpec
    dep: Deployment
    eff: Efficiency
    kernel: KernelFactor
    dense_weight_bytes: float       # read every forward pass (per rank, fullest stage), lm_head included
    expert_bytes_per_expert: float  # one expert of one MoE layer, per rank
    moe_layers: int                 # MoE layers on the fullest stage
    matmul_weights: float           # weights stored per rank on the stage (for dequant traffic)
    flops_per_token: float          # 2 x active matmul params per token (body, per rank)
    lm_head_flops: float            # 2 x vocab x hidden per sampled token (per rank)
    attn_groups: tuple[tuple[str, int, int, float], ...]  # (kind, layers, window, flops per ctx token)
    kv_groups: tuple[kvmod.KvGroup, ...]
    layers: int                     # layers on the fullest stage
    compute_dtype: str
    allreduce_bytes_per_token: float
    cpu_layers: int = 0             # GGUF partial offload: layers left on the CPU
    host_bandwidth_bytes_per_s: float = 0.0
    cpu_layer_bytes: float = 0.0
    ops: OpCurves | None = None     # measured operator latencies for this GPU and plan (planner/opstep.py)
    ops_note: str = ""              # why the roofline is used instead, when ``ops`` is None
    # an MoE plan on the roofline: its kernels x how far the measured tables sit above the roofline on the MoE
    # plans they cover, by the pass's size (log decode batches, factors, log prefill tokens, factors:
    # profiles/kernels.json moe_roofline_realism, scripts/moe_realism.py); None: the roofline as it is
    realism: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def source(self) -> str:
        """Where the step times come from: measured operator tables, or the calibrated roofline."""
        if self.ops is not None:
            return self.ops.source
        src = f"roofline ({self.eff.provenance} efficiencies)" + (f"; {self.ops_note}" if self.ops_note else "")
        if self.realism is not None:
            src += ("; MoE kernels x the measured tables' median over the roofline on the MoE plans they cover "
                    "(profiles/kernels.json moe_roofline_realism)")
        return src

    @property
    def peak_flops(self) -> float:
        return self.gpu.flops(self.compute_dtype)

    # ---- building blocks (all vectorised) ------------------------------------------------
    def experts_touched(self, tokens):
        """Expected distinct experts per MoE layer hit by ``tokens`` tokens choosing k of E each."""
        e, k = self.spec.num_experts, self.spec.experts_per_token
        if not self.moe_layers:
            return np.zeros_like(np.asarray(tokens, dtype=float))
        return e * (1.0 - (1.0 - k / e) ** np.asarray(tokens, dtype=float))

    def weight_read_bytes(self, tokens):
        t = np.asarray(tokens, dtype=float)
        moe = self.moe_layers * self.experts_touched(t) * self.expert_bytes_per_expert
        dq = np.where(t >= self.kernel.dequant_min_tokens, self.kernel.dequant_bytes_per_weight * self.matmul_weights, 0.0)
        return self.dense_weight_bytes + moe + dq

    def attention_flops(self, context, new_tokens):
        """FLOPs of attention for ``new_tokens`` query tokens appended after ``context - new_tokens``.

        Per layer and query token: 2 x heads x (qk_dim + v_dim) x visible keys. A prefill of P
        tokens sees 1..P keys (causal: the P^2/2 term), a decode token sees the context, both
        capped by a sliding window.
        """
        ctx = np.asarray(context, dtype=float)
        new = np.asarray(new_tokens, dtype=float)
        start = ctx - new
        total = 0.0
        for _, layers, window, per_key in self.attn_groups:
            if window:
                # sum over i in (start, ctx] of min(i, window)
                def s(x, w=window):
                    x = np.asarray(x, dtype=float)
                    return np.where(x <= w, x * (x + 1) / 2, w * (w + 1) / 2 + (x - w) * w)
                keys = s(ctx) - s(start)
            else:
                keys = ctx * (ctx + 1) / 2 - start * (start + 1) / 2
            total = total + layers * per_key * keys
        return total

    def comm_s(self, tokens):
        tp = self.dep.tp
        if tp == 1 or not self.gpu.interconnect_bytes_per_s:
            return np.zeros_like(np.asarray(tokens, dtype=float))
        msg = np.asarray(tokens, dtype=float) * self.allreduce_bytes_per_token
        ring = 2 * (tp - 1) / tp * msg / self.gpu.interconnect_bytes_per_s
        return 2 * self.layers * (ring + self.eff.allreduce_latency_s)

    def _roofline(self, flops, bytes_, tokens, attn_flops=0.0):
        """Compute and memory times; attention FLOPs may run at their own efficiency."""
        attn_eff = self.eff.attention_compute or self.eff.compute
        t_c = ((flops - attn_flops) / (self.peak_flops * self.eff.compute * self.kernel.compute_factor)
               + attn_flops / (self.peak_flops * attn_eff))
        t_m = bytes_ / (self.gpu.memory_bandwidth_bytes_per_s * self.eff.memory * self.kernel.memory_factor)
        return t_c, t_m

    def _cpu_s(self, tokens):
        if not self.cpu_layers:
            return 0.0
        return self.cpu_layer_bytes / self.host_bandwidth_bytes_per_s + 0 * np.asarray(tokens, dtype=float)

    # ---- phases ---------------------------------------------------------------------------
    def step(self, decode_batch, decode_context, prefill_tokens=0, prefill_context=0) -> dict[str, np.ndarray]:
        """One forward pass of continuous batching.

        ``decode_batch`` sequences with ``decode_context`` tokens cached each add one token; a
        prefill chunk of ``prefill_tokens`` tokens is appended to a sequence that then holds
        ``prefill_context`` tokens (its earlier chunks' KV is read, its own is written).
        """
        t, flops, bytes_, kv_read, t_c, t_m = self._step(decode_batch, decode_context, prefill_tokens, prefill_context)
        return {"time_s": t, "flops": flops, "bytes": bytes_, "kv_read_bytes": kv_read,
                "compute_s": t_c, "memory_s": t_m, "bound": np.where(t_c >= t_m, "compute", "memory")}

    def _step(self, decode_batch, decode_context, prefill_tokens, prefill_context):
        """``step``'s time, FLOPs, bytes, KV bytes read, compute and memory times."""
        b = np.asarray(decode_batch, dtype=float)
        ctx = np.asarray(decode_context, dtype=float)
        pt = np.asarray(prefill_tokens, dtype=float)
        pctx = np.maximum(np.asarray(prefill_context, dtype=float), pt)
        has_prefill = (pt > 0).astype(float)
        tokens, flops, bytes_, kv_read, t_c, t_m = self._roofline_terms(
            b, ctx, pt, pctx, has_prefill, kvmod.kv_cache_bytes, self.weight_read_bytes, self.attention_flops)
        if self.ops is not None:  # measured operators, plus the engine's fixed cost per forward pass
            t = (self._with_launch(self.ops.step_s(b, ctx, pt, pctx), tokens) + self.eff.step_overhead_s
                 + self._prefill_extra_s(pt) + self.eff.sequence_step_s * b + self._allreduce_wait_s(b, ctx))
        else:
            fixed = self.eff.step_overhead_s + self.layers * self.eff.layer_overhead_s + self.eff.sequence_step_s * b
            t = (np.maximum(t_c, t_m) + self.comm_s(tokens)) * self._realism(b, pt) + fixed + self._cpu_s(tokens)
        return self._pipeline(t), flops, bytes_, kv_read, t_c, t_m

    def _realism(self, decode_batch, prefill_tokens):
        """The MoE realism factor of a pass (``realism``): at its prefill chunk's tokens when it has one, else at
        its decode batch, log-linear between the measured sizes and flat beyond them; 1 without one (exact)."""
        if self.realism is None:
            return 1.0
        lb, fb, lp, fp = self.realism
        b = np.log(np.maximum(np.asarray(decode_batch, dtype=float), 1.0))
        pt = np.asarray(prefill_tokens, dtype=float)
        return np.where(pt > 0, np.interp(np.log(np.maximum(pt, 1.0)), lp, fp), np.interp(b, lb, fb))

    def roofline_kernels_s(self, decode_batch, decode_context, prefill_tokens=0, prefill_context=0) -> float:
        """One pass's kernels on the roofline, without fixed costs or the MoE realism factor: max(compute,
        memory) + the all-reduce estimate (what scripts/moe_realism.py sets against the measured tables)."""
        pt = float(prefill_tokens)
        return float(self._roofline_kernels1(float(decode_batch), float(decode_context), pt,
                                             max(float(prefill_context), pt)))

    def _roofline_kernels1(self, b: float, ctx: float, pt: float, pctx: float) -> float:
        """``roofline_kernels_s`` of one pass in plain floats (``_roofline_step1``'s kernels)."""
        tokens, _, _, _, t_c, t_m = self._roofline_terms(b, ctx, pt, pctx, 1.0 if pt > 0 else 0.0, kvmod.kv_cache_bytes1,
                                                         self._weight_read_bytes1, self._attention_flops1)
        return max(t_c, t_m) + self._comm_s1(tokens)

    def step_time_s(self, decode_batch, decode_context, prefill_tokens=0, prefill_context=0,
                    sequences=None) -> float:
        """``step(...)["time_s"]`` of one pass, as a float: what a simulation asks for at every pass. On the
        measured tables it is computed in plain floats, equal to ``step`` to the bit (numpy's overhead on
        one-element arrays was most of a simulation's time), on the roofline too (``_roofline_step1``).
        ``sequences``: the requests whose per-sequence cost the pass pays (default the decode batch; a decode
        batch padded up to a CUDA graph's size runs more rows than it has requests)."""
        b, ctx, pt = float(decode_batch), float(decode_context), float(prefill_tokens)
        pctx = max(float(prefill_context), pt)
        n = b if sequences is None else float(sequences)
        if self.ops is None:
            return self._roofline_step1(b, ctx, pt, pctx, n)
        t = self._with_launch1(self.ops.step1(b, ctx, pt, pctx), b + pt) + self.eff.step_overhead_s
        t = t + self._prefill_extra1(pt) + self.eff.sequence_step_s * n
        if b > 0 and self._spreads():  # _allreduce_wait_from of one pass (x 1.0: exact)
            t = t + self.eff.allreduce_spread * expected_max_normal(self.dep.tp) * self.ops.step1(b, ctx, 0.0, 0.0)
        return t * self.dep.pp

    def _roofline_step1(self, b: float, ctx: float, pt: float, pctx: float, n: float) -> float:
        """``_step``'s time on the roofline for one pass, in plain floats: the same arithmetic in the same order
        (``kv.kv_cache_bytes1`` and the ``...1`` twins below), so equal to it to the bit."""
        fixed = self.eff.step_overhead_s + self.layers * self.eff.layer_overhead_s + self.eff.sequence_step_s * n
        cpu = self.cpu_layer_bytes / self.host_bandwidth_bytes_per_s if self.cpu_layers else 0.0
        kernels = self._roofline_kernels1(b, ctx, pt, pctx) * float(self._realism(b, pt))
        return float(self._pipeline(kernels + fixed + cpu))

    def _roofline_terms(self, b, ctx, pt, pctx, has_prefill, kv_bytes, weight_read, attention_flops):
        """A pass's tokens, FLOPs, bytes, KV bytes read, compute and memory times, with the building blocks given:
        the vectorised ones (``_step``) or their plain-float twins (``_roofline_step1``)."""
        groups, eng, bs, mnbt = self.kv_groups, self.dep.engine, self.dep.block_size, self.dep.mnbt
        kv_read = kv_bytes(groups, b, ctx + 1, eng, bs, mnbt) + kv_bytes(groups, has_prefill, pctx, eng, bs, mnbt)
        tokens = b + pt
        bytes_ = weight_read(tokens) + kv_read
        prefill_attn = attention_flops(pctx, pt)
        attn = b * attention_flops(ctx + 1, 1) + prefill_attn
        flops = tokens * self.flops_per_token + (b + has_prefill) * self.lm_head_flops + attn
        t_c, t_m = self._roofline(flops, bytes_, tokens, prefill_attn)
        return tokens, flops, bytes_, kv_read, t_c, t_m

    def _weight_read_bytes1(self, t: float) -> float:
        """``weight_read_bytes`` (and ``experts_touched``) of one token count."""
        e, k = self.spec.num_experts, self.spec.experts_per_token
        touched = e * (1.0 - (1.0 - k / e) ** t) if self.moe_layers else 0.0
        moe = self.moe_layers * touched * self.expert_bytes_per_expert
        dq = self.kernel.dequant_bytes_per_weight * self.matmul_weights if t >= self.kernel.dequant_min_tokens else 0.0
        return self.dense_weight_bytes + moe + dq

    def _attention_flops1(self, ctx: float, new: float) -> float:
        """``attention_flops`` of one context and query count."""
        start = ctx - new
        total = 0.0
        for _, layers, window, per_key in self.attn_groups:
            if window:
                def s(x, w=window):
                    return x * (x + 1) / 2 if x <= w else w * (w + 1) / 2 + (x - w) * w
                keys = s(ctx) - s(start)
            else:
                keys = ctx * (ctx + 1) / 2 - start * (start + 1) / 2
            total = total + layers * per_key * keys
        return total

    def _comm_s1(self, tokens: float) -> float:
        """``comm_s`` of one token count."""
        tp = self.dep.tp
        if tp == 1 or not self.gpu.interconnect_bytes_per_s:
            return 0.0
        ring = 2 * (tp - 1) / tp * (tokens * self.allreduce_bytes_per_token) / self.gpu.interconnect_bytes_per_s
        return 2 * self.layers * (ring + self.eff.allreduce_latency_s)

    def decode_step(self, batch, context) -> dict[str, np.ndarray]:
        """One decode step: ``batch`` sequences, each with ``context`` tokens already cached."""
        return self.step(batch, context)

    def prefill(self, batch, prompt, decode_batch=0, decode_context=0) -> dict[str, np.ndarray]:
        """Prefill of ``batch`` prompts of ``prompt`` tokens (chunked at max_num_batched_tokens in paged).

        ``decode_batch`` sequences at ``decode_context`` may ride in the same forward pass, as in
        continuous batching with chunked prefill: their tokens add FLOPs and their KV is read.
        """
        b = np.asarray(batch, dtype=float)
        p = np.asarray(prompt, dtype=float)
        db = np.asarray(decode_batch, dtype=float)
        tokens = b * p
        chunk = self.dep.mnbt if self.dep.engine == "paged" else np.inf
        # every pass carries the decodes and fills the rest of the budget with prompt: full passes of
        # ``chunk`` tokens, then the last one with what is left (not a full pass per chunk: one decode riding
        # with an 8,192-token prompt under an 8,192-token budget is a second pass of 1 + 1 tokens)
        room = np.maximum(chunk - db, 1.0)
        chunks = np.maximum(1, np.ceil(tokens / room))
        per_chunk = np.minimum(tokens + db, chunk)
        last = np.where(chunks > 1, tokens - (chunks - 1) * np.minimum(room, tokens), tokens) + db
        kv_write = kvmod.kv_cache_bytes(self.kv_groups, b, p, self.dep.engine, self.dep.block_size,
                                        self.dep.mnbt)
        kv_other = kvmod.kv_cache_bytes(self.kv_groups, db, np.asarray(decode_context, dtype=float) + 1,
                                        self.dep.engine, self.dep.block_size, self.dep.mnbt)
        # weights once per chunk; the prompt's KV written once and re-read by later chunks
        bytes_ = chunks * self.weight_read_bytes(per_chunk) + 2 * kv_write + kv_other
        attn = b * self.attention_flops(p, p) + db * self.attention_flops(np.asarray(decode_context) + 1, 1)
        flops = (tokens + db) * self.flops_per_token + (b + db) * self.lm_head_flops + attn
        t_c, t_m = self._roofline(flops, bytes_, tokens, attn)
        if self.ops is not None:
            # every chunk a forward pass of per_chunk tokens; the prompts' attention once in all
            o = self.ops
            tok = (chunks - 1) * _interp_ops(o, per_chunk) + _interp_ops(o, last) + chunks * o.step_s(0, 0, 0, 0) \
                + b * o.step_s(0, 0, p, p) - b * _interp_ops(o, p) - b * o.step_s(0, 0, 0, 0)
            dec = chunks * (o.step_s(db, np.asarray(decode_context, dtype=float), 0, 0) - _interp_ops(o, db))
            t = (self._with_launch(tok + dec, per_chunk, chunks) + chunks * self.eff.step_overhead_s
                 + self._prefill_extra_s(tokens) + chunks * self.eff.sequence_step_s * db
                 + self._allreduce_wait_s(db, decode_context, chunks))
        else:
            fixed = chunks * (self.eff.step_overhead_s + self.layers * self.eff.layer_overhead_s
                              + self.eff.sequence_step_s * db)
            # (the MoE realism factor at the size of its chunks)
            kernels = (np.maximum(t_c, t_m) + self.comm_s(tokens + db)) * self._realism(db, per_chunk - db)
            t = kernels + fixed + chunks * self._cpu_s(tokens)
        t = self._pipeline(t)
        return {"time_s": t, "flops": flops, "bytes": bytes_, "compute_s": t_c, "memory_s": t_m,
                "bound": np.where(t_c >= t_m, "compute", "memory")}

    def _prefill_extra_s(self, prompt_tokens):
        """Prefill time the measured operator tables do not show: ``prefill_token_layer_s`` per prompt
        token and layer, split across the TP ranks (the work is sharded). Fitted per engine on published
        end-to-end runs (planner/fit_e2e.py): at four clients, where one prompt's prefill is nearly all
        of the TTFT, vLLM's measured TTFT grows 1.22-1.47x (Llama-3.1-70B fp8) and 1.05-1.50x (gpt-oss-120b
        on the Marlin experts its runs used) as fast with the prompt length as the tables' prefill does
        (docs/validation.md)."""
        c = self.eff.prefill_token_layer_s
        if not c:
            return 0.0
        return np.asarray(prompt_tokens, dtype=float) * self.layers * c / self.dep.tp

    def _prefill_extra1(self, pt: float) -> float:
        """``_prefill_extra_s`` of one pass in plain floats (the same arithmetic)."""
        c = self.eff.prefill_token_layer_s
        return pt * self.layers * c / self.dep.tp if c else 0.0

    def _allreduce_wait_s(self, decode_batch, decode_context, passes=1):
        """What the all-reduces cost in a model beyond the kernel measured alone: TP ranks run in lockstep,
        so each waits out the others' skew inside its all-reduce (ai-dynamo/aiconfigurator @095f58a
        .claude/skills/aic-silicon-align: "stragglers' wait is absorbed into other ranks' NCCL kernel
        durations"). The ranks' arrival spread is taken as a fraction ``allreduce_spread`` (fitted per engine)
        of the decode work between all-reduces, and an all-reduce ends when the last of TP arrives, the
        expected maximum of TP normals (``expected_max_normal``: 0.56 / 1.03 / 1.42 at TP 2 / 4 / 8) spreads
        after the mean rank; summed over a pass's all-reduces that is ``allreduce_spread`` x
        ``expected_max_normal(TP)`` x the decode tokens' measured pass (``passes`` times, 0 without decodes).

        Relative, not a constant per all-reduce: vLLM's TP-8 TPOT on Llama-3.1-70B fp8 fell short of the runs
        by a wait that grows with the batch, and a constant spread fitted on all runs over-predicted 4-8 clients
        by ~15 % while under-predicting 64 (docs/validation.md). Decode work only: the prompt's long GEMMs do
        not show it, vLLM's light-load TTFT grows against the tables' prefill least at TP 8 (1.22x) and most
        at TP 1 (1.47x; benchmarks/prefill_slope.py), the opposite of a wait that grows with TP."""
        if not self._spreads():
            return 0.0
        b = np.asarray(decode_batch, dtype=float)
        work = np.where(b > 0, self.ops.step_s(b, np.asarray(decode_context, dtype=float), 0, 0), 0.0)
        return self._allreduce_wait_from(work, passes)

    def _spreads(self) -> bool:
        """Whether the ranks' arrival spread costs anything: fitted, at TP > 1, on the measured tables."""
        return bool(self.eff.allreduce_spread) and self.dep.tp > 1 and self.ops is not None

    def _allreduce_wait_from(self, work, passes=1):
        """``_allreduce_wait_s`` given the decode tokens' measured pass ``work`` (0 where the spread costs nothing)."""
        if not self._spreads():
            return 0.0
        return self.eff.allreduce_spread * expected_max_normal(self.dep.tp) * work * np.asarray(passes, dtype=float)

    def _with_launch(self, gpu_s, tokens, passes=1):
        """A forward pass of more tokens than the largest captured CUDA graph runs without a graph: the
        CPU launches every kernel of every layer from Python (``eager_layer_overhead_s`` per layer,
        an engine constant fitted on end-to-end runs). The GPU works while the CPU launches, so such
        a pass takes the longer of the two, ``passes`` times."""
        if not self.eff.eager_layer_overhead_s:
            return gpu_s
        big = np.asarray(tokens, dtype=float) > self.eff.graph_max_tokens
        cpu = passes * self.layers * self.eff.eager_layer_overhead_s
        eager = np.maximum(gpu_s, cpu) if self.eff.eager_overlaps else gpu_s + cpu
        return np.where(big, eager, gpu_s)

    def _with_launch1(self, gpu_s: float, tokens: float) -> float:
        """``_with_launch`` of one pass in plain floats (the same arithmetic)."""
        e = self.eff
        if not e.eager_layer_overhead_s or not tokens > e.graph_max_tokens:
            return gpu_s
        cpu = self.layers * e.eager_layer_overhead_s
        return max(gpu_s, cpu) if e.eager_overlaps else gpu_s + cpu

    def _pipeline(self, stage_time):
        """PP: a token passes every stage in turn, so latency is pp x the fullest stage's time."""
        return stage_time * self.dep.pp

    def tpot(self, batch, prompt, output):
        """Mean decode step over a request's output (Simpson's rule over the growing context)."""
        p = np.asarray(prompt, dtype=float)
        o = np.maximum(np.asarray(output, dtype=float) - 1, 0)
        s0 = self.decode_step(batch, p)["time_s"]
        s1 = self.decode_step(batch, p + o / 2)["time_s"]
        s2 = self.decode_step(batch, p + o)["time_s"]
        return (s0 + 4 * s1 + s2) / 6

    def with_efficiency(self, eff: Efficiency) -> TimingModel:
        return replace(self, eff=eff)


def _interp_ops(o: OpCurves, tokens):
    """The token-proportional part of a forward pass of ``tokens`` tokens (GEMMs, MoE, all-reduce)."""
    from .opstep import _interp
    return _interp(tokens, o.tokens, o.token_ops_s)


def _attn_groups(spec: ModelSpec, tp: int, frac: float) -> tuple[tuple[str, int, int, float], ...]:
    """(kind, layers on the stage, window, FLOPs per query token per visible key) per attention kind:
    owned by the layer-kind classes (planner/layerkinds.py via kv.attention_groups)."""
    return kvmod.attention_groups(spec, tp, frac)


def build_timing(spec: ModelSpec, gpu: GpuSpec, dep: Deployment, table: FormatTable, eff: Efficiency,
                 kernel: KernelFactor, gpu_layers: int | None = None,
                 host_bandwidth_bytes_per_s: float = 0.0) -> TimingModel:
    """Reduce ``spec`` on ``gpu`` under ``dep`` to a TimingModel.

    ``gpu_layers`` (GGUF partial offload): only that many layers run on the GPU; the others are
    read from host memory at ``host_bandwidth_bytes_per_s`` every forward pass.
    """
    (dense, expert_one, moe_layers, matrix_weights, body_active, layers, frac, cpu_layers,
     cpu_bytes) = _weight_scalars(spec, table, dep.weights, dep.tp, dep.pp, gpu_layers)
    tp = dep.tp
    lm = spec.vocab_size * (spec.word_embed_proj_dim or spec.hidden_size)
    kv_groups = tuple(kvmod.KvGroup(g.kind, int(round(g.layers * frac)) or 1, g.window, g.bytes_per_token, g.bytes_per_seq)
                      for g in kvmod.layer_groups(spec, dep.kv_dtype, dep.engine, tp))
    fmt = table.get(dep.weights)
    compute_dtype = "fp16" if fmt.compute_dtype in ("fp16", "bf16") else fmt.compute_dtype
    if compute_dtype in ("fp8", "int8") and not gpu.has_native(compute_dtype):
        compute_dtype = "fp16"  # e.g. fp8 weights on an A100 run as W8A16 (Marlin)
    ops, note = (None, "") if cpu_layers or dep.engine != "paged" else op_curves(spec, dep, gpu.id, fmt)
    realism = moe_realism() if spec.is_moe and ops is None and dep.engine == "paged" and not cpu_layers else None
    return TimingModel(
        spec=spec, gpu=gpu, dep=dep, eff=eff, kernel=kernel, dense_weight_bytes=float(dense),
        expert_bytes_per_expert=float(expert_one), moe_layers=moe_layers, matmul_weights=float(matrix_weights),
        flops_per_token=2.0 * body_active / tp, lm_head_flops=2.0 * lm / tp,
        attn_groups=_attn_groups(spec, tp, frac), kv_groups=kv_groups, layers=layers, compute_dtype=compute_dtype,
        allreduce_bytes_per_token=spec.hidden_size * 2.0, cpu_layers=cpu_layers,
        host_bandwidth_bytes_per_s=host_bandwidth_bytes_per_s, cpu_layer_bytes=float(cpu_bytes),
        ops=ops, ops_note=note, realism=realism,
    )


@lru_cache(maxsize=1)
def moe_realism() -> tuple | None:
    """profiles/kernels.json ``moe_roofline_realism`` as ``TimingModel.realism`` (None when absent)."""
    from . import profiles

    r = profiles.kernels().get("moe_roofline_realism")
    if not r:
        return None
    return (tuple(np.log(np.asarray(r["decode_batch"], dtype=float)).tolist()), tuple(float(x) for x in r["decode"]),
            tuple(np.log(np.asarray(r["prefill_tokens"], dtype=float)).tolist()), tuple(float(x) for x in r["prefill"]))


@lru_cache(maxsize=1024)
def _weight_scalars(spec: ModelSpec, table: FormatTable, weights: str, tp: int, pp: int, gpu_layers: int | None):
    """The weight scalars of ``build_timing`` (per rank, fullest stage): dense bytes read every pass, one expert's
    bytes, MoE layers, matmul weights, active body parameters, layers, the stage's share of layers, and the
    layers and bytes left on the CPU. Remembered per argument set (all immutable): a search builds the same
    model in the same format at many GPUs."""
    df = tensor_bytes(spec, table, weights)
    inv = inventory(spec)
    frac = stage_layers(spec.num_layers, pp).max() / spec.num_layers
    in_layer = df["layer"].to_numpy() >= 0
    is_expert = df["role"].str.startswith("expert_").to_numpy()
    is_embed = df["role"].isin(["embed", "pos_embed"]).to_numpy() | (df["component"] == "vision").to_numpy()
    b = df["bytes"].to_numpy() / np.where(df["matrix"].to_numpy(), tp, 1)
    layer_dense = b[in_layer & ~is_expert].sum() * frac
    outside = b[~in_layer & ~is_embed].sum()
    if spec.tie_word_embeddings:
        outside += b[df["role"].to_numpy() == "embed"].sum()  # the tied table is read as the lm_head
    moe_layers = int(round(sum(spec.moe_layers) * frac))
    expert_one = (b[is_expert].sum() / max(1, spec.num_experts) / max(1, sum(spec.moe_layers))) if spec.is_moe else 0.0
    matmul = inv["matrix"].to_numpy() & ~is_embed
    body_active = (inv["active_params"].to_numpy() * (matmul & in_layer)).sum() * frac
    matrix_weights = (inv["params"].to_numpy() * (matmul & in_layer)).sum() * frac / tp
    layers = int(stage_layers(spec.num_layers, pp).max())
    cpu_layers, cpu_bytes, dense = 0, 0.0, layer_dense + outside
    if gpu_layers is not None and gpu_layers < spec.num_layers:
        cpu_layers = spec.num_layers - gpu_layers
        per_layer = (layer_dense + (b[is_expert].sum() * frac)) / layers
        cpu_bytes = cpu_layers * per_layer
        dense = dense - cpu_layers * (layer_dense / layers)
    return dense, expert_one, moe_layers, matrix_weights, body_active, layers, frac, cpu_layers, cpu_bytes


@lru_cache(maxsize=256)
def op_curves(spec: ModelSpec, dep: Deployment, gpu_id: str, fmt) -> tuple[OpCurves | None, str]:
    """The plan's measured-operator curves (planner/opstep.py), cached per model, deployment and GPU."""
    gemm_kind = fmt.id if fmt.id in GEMM_DTYPE else ("bf16" if fmt.family == "mxfp4" else fmt.id)
    family = fmt.id if fmt.id in MOE_DTYPE else fmt.family
    return OpCurves.build(spec, dep, gpu_id, family, gemm_kind, dep.kv_dtype, dep.server_version)


@lru_cache(maxsize=64)
def expected_max_normal(n: int) -> float:
    """E[max of ``n`` independent standard normals]: how far behind the mean rank the slowest of ``n``
    arrives, in standard deviations. 0 for one rank, 1 / sqrt(pi) = 0.5642 for two (E max(X, Y) =
    E|X - Y| / 2 and X - Y ~ N(0, 2)), 1.0294 for four, 1.4236 for eight: the integral of
    x n phi(x) Phi(x)^(n - 1) over x, by the trapezoid rule on [-10, 10] (the tails beyond hold under 1e-20)."""
    import math

    if n <= 1:
        return 0.0
    x = np.linspace(-10.0, 10.0, 20001)
    cdf = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    f = x * n * pdf * cdf ** (n - 1)
    return float(np.sum((f[1:] + f[:-1]) * np.diff(x)) / 2.0)
