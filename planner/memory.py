"""The memory plan of one GPU, and the solvers built on it.

Per GPU: weights (split by tensor and pipeline parallelism) + KV cache + activations (the
prefill peak and the logits buffer) + runtime overhead (CUDA context, allocator). "Does not
fit" is a result with a reason, never an exception. Everything here is vectorised: batch and
context may be numpy arrays of any broadcastable shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import kv as kvmod
from .errors import PlannerInputError, require_fraction, require_positive_int
from .formats import FormatTable, tensor_bytes
from .gpus import GpuSpec
from .runtime import Runtime
from .spec import ModelSpec

MAX_BATCH = 1 << 20
MAX_CONTEXT = 1 << 24


SERVERS = ("vllm", "sglang", "trtllm")
# vLLM's kernel for MXFP4 experts: "auto" = its default (Triton on Hopper: oracle/mxfp4.py), "marlin" = the
# Marlin W4A16 experts that VLLM_MXFP4_USE_MARLIN=1 selects
MXFP4_MOE_BACKENDS = ("auto", "marlin")


@dataclass(frozen=True)
class Deployment:
    """How the model is served. ``engine`` is the KV layout: 'paged' (a serving engine) or
    'transformers' (HF generate). ``server`` names the serving engine of a paged deployment and
    ``server_version`` its release (None: the newest in profiles/engines). Scheduler limits and the
    memory utilization left None take that engine version's defaults when the plan is built
    (``api.build_plan``); code that reads them before uses ``mnbt`` / ``seqs`` / ``util``, which fall
    back to vLLM's long-standing 8192 / 256 / 0.9."""

    weights: str = "bf16"
    kv_dtype: str = "auto"  # the cache the serving engine allocates (deploy.resolve, startup._kv_dtype)
    engine: str = "paged"
    tp: int = 1
    pp: int = 1
    gpu_memory_utilization: float | None = None
    block_size: int = kvmod.PAGED_BLOCK_SIZE
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    server: str = "vllm"
    server_version: str | None = None
    entry_point: str = "serve"
    cuda_graph_sizes: tuple[int, ...] | None = None  # vLLM --cudagraph-capture-sizes / SGLang --cuda-graph-bs
    enable_mixed_chunk: bool = False  # SGLang --enable-mixed-chunk: prefill chunks ride with the decodes
    batch_wait_timeout_iters: int = 0  # TensorRT-LLM: steps a context batch may wait for more tokens (0: off)
    batch_wait_max_tokens_ratio: float = 0.0  # TensorRT-LLM: ... until they reach this share of max_num_tokens
    mxfp4_moe_backend: str = "auto"  # vLLM: MXFP4 experts' kernel; "marlin" = VLLM_MXFP4_USE_MARLIN=1
    async_scheduling: bool | None = None  # vLLM --async-scheduling / --no-async-scheduling; None: the release's default

    def __post_init__(self):
        require_positive_int("tp", self.tp, maximum=1024)
        require_positive_int("pp", self.pp, maximum=1024)
        if self.gpu_memory_utilization is not None:
            require_fraction("gpu_memory_utilization", self.gpu_memory_utilization)
        require_positive_int("block_size", self.block_size, maximum=4096)
        if self.max_num_batched_tokens is not None:
            require_positive_int("max_num_batched_tokens", self.max_num_batched_tokens, maximum=MAX_CONTEXT)
        if self.max_num_seqs is not None:
            require_positive_int("max_num_seqs", self.max_num_seqs, maximum=MAX_BATCH)
        if self.cuda_graph_sizes is not None:
            if not isinstance(self.cuda_graph_sizes, tuple) or len(self.cuda_graph_sizes) > MAX_BATCH:
                raise PlannerInputError("cuda_graph_sizes", "must be a tuple of batch sizes",
                                        "e.g. (1, 2, 4, 8) or leave it to the engine's default")
            for b in self.cuda_graph_sizes:
                require_positive_int("cuda_graph_sizes", b, maximum=MAX_CONTEXT)
        require_positive_int("batch_wait_timeout_iters", self.batch_wait_timeout_iters, maximum=1_000_000, allow_zero=True)
        if not (isinstance(self.batch_wait_max_tokens_ratio, int | float) and 0.0 <= self.batch_wait_max_tokens_ratio <= 1.0):
            raise PlannerInputError("batch_wait_max_tokens_ratio", f"must be in [0, 1], got {self.batch_wait_max_tokens_ratio!r}",
                                    "give 0 (off) or a share of max_num_tokens such as 0.9")
        if self.mxfp4_moe_backend not in MXFP4_MOE_BACKENDS:
            raise PlannerInputError("mxfp4_moe_backend", f"unknown MXFP4 MoE kernel {self.mxfp4_moe_backend!r}",
                                    f"choose one of {', '.join(MXFP4_MOE_BACKENDS)}")
        if self.mxfp4_moe_backend != "auto" and self.server != "vllm":
            raise PlannerInputError("mxfp4_moe_backend", f"is vLLM's VLLM_MXFP4_USE_MARLIN; {self.server} has no such setting",
                                    "leave it 'auto', or serve with vLLM")
        if self.async_scheduling is not None:
            if not isinstance(self.async_scheduling, bool):
                raise PlannerInputError("async_scheduling", f"must be true or false, got {self.async_scheduling!r}",
                                        "give true (--async-scheduling), false, or leave it to the release's default")
            if self.server != "vllm" or self.engine != "paged":
                what = self.server if self.engine == "paged" else "HF transformers (no server)"
                raise PlannerInputError("async_scheduling", f"is vLLM's --async-scheduling; {what} has no such "
                                        "setting", "leave it unset, or serve with vLLM")
        if self.engine not in kvmod.ENGINES:
            raise PlannerInputError("engine", f"unknown engine {self.engine!r}", f"choose one of {', '.join(kvmod.ENGINES)}")
        if self.server not in SERVERS:
            raise PlannerInputError("server", f"unknown serving engine {self.server!r}", f"choose one of {', '.join(SERVERS)}")
        kvmod.kv_dtype(self.kv_dtype)

    @property
    def mnbt(self) -> int:
        return self.max_num_batched_tokens or kvmod.PAGED_MAX_NUM_BATCHED_TOKENS

    @property
    def seqs(self) -> int:
        return self.max_num_seqs or 256

    @property
    def util(self) -> float:
        return self.gpu_memory_utilization or 0.9


def check_parallelism(spec: ModelSpec, dep: Deployment) -> None:
    """TP must divide the attention heads (vLLM's rule); PP at most the layers."""
    if spec.num_heads % dep.tp:
        ok = [t for t in (1, 2, 4, 8, 16, 32, 64) if spec.num_heads % t == 0]
        raise PlannerInputError("tp", f"{spec.num_heads} attention heads do not split over {dep.tp} GPUs",
                                f"use a TP degree in {ok}")
    if spec.num_kv_heads % dep.tp and dep.tp % spec.num_kv_heads:
        raise PlannerInputError("tp", f"{spec.num_kv_heads} KV heads and TP={dep.tp}: neither divides the other",
                                "use a TP degree that divides the KV heads or a multiple of them")
    if dep.pp > spec.num_layers:
        raise PlannerInputError("pp", f"{dep.pp} pipeline stages for {spec.num_layers} layers", "use at most one stage per layer")


def stage_layers(n_layers: int, pp: int) -> np.ndarray:
    """Layers per pipeline stage, as vLLM splits them (earlier stages get the remainder)."""
    base, extra = divmod(n_layers, pp)
    return np.array([base + (1 if s < extra else 0) for s in range(pp)])


def weight_bytes_per_gpu(spec: ModelSpec, table: FormatTable, dep: Deployment) -> float:
    """Weights held by the fullest GPU under TP x PP.

    Matrices split over TP ranks; 1-D tensors (norms, biases) are replicated; K/V projections
    are replicated when there are fewer KV heads than ranks (each rank keeps one head).
    Embeddings sit on the first stage, the lm_head and final norm on the last.
    """
    return _weight_bytes_per_gpu(spec, table, dep.weights, dep.tp, dep.pp)


@lru_cache(maxsize=1024)
def _weight_bytes_per_gpu(spec: ModelSpec, table: FormatTable, weights: str, tp: int, pp: int) -> float:
    """``weight_bytes_per_gpu`` from the fields of the deployment it reads (remembered: a search over a
    model's deployments asks for the same few many times)."""
    df = tensor_bytes(spec, table, weights)
    b = df["bytes"].to_numpy()
    split = np.where(df["matrix"].to_numpy(), tp, 1).astype(float)
    if tp > spec.num_kv_heads and not spec.is_mla:
        kv = df["role"].isin(["attn_k", "attn_v"]).to_numpy()
        split = np.where(kv, spec.num_kv_heads, split)
    per_rank = b / split
    layer = df["layer"].to_numpy()
    counts = stage_layers(spec.num_layers, pp)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    stage_of = np.searchsorted(bounds, layer, side="right") - 1
    first = (np.isin(df["role"].to_numpy(), ["embed", "pos_embed", "embed_proj", "embed_per_layer"])
             | (df["component"] == "vision").to_numpy()) & (layer < 0)  # vLLM runs the vision tower on stage 0
    stage_of = np.where(layer < 0, np.where(first, 0, pp - 1), stage_of)
    per_stage = np.bincount(stage_of, weights=per_rank, minlength=pp)
    return float(per_stage.max())


def activation_bytes_per_token(spec: ModelSpec, dep: Deployment, act_bytes: float = 2.0) -> float:
    """Transient bytes per token in flight during a forward pass, on one rank.

    The widest moment of a layer: the MLP's gate and up outputs and their product
    (3 x intermediate, or k experts x 3 x moe_intermediate for MoE), or the attention's
    q, k, v and output, plus the residual stream and its normed copy (2 x hidden). An estimate,
    calibrated by the profiler's peak-memory measurements (docs/formulas.md).
    """
    tp = dep.tp
    mlp = 3 * spec.intermediate_size / tp
    if spec.is_moe:
        mlp = max(mlp, 3 * spec.experts_per_token * spec.moe_intermediate_size / tp
                  + 3 * spec.shared_expert_intermediate_size / tp)
    attn = (spec.num_heads * (spec.head_dim + spec.v_head_dim) + 2 * spec.num_kv_heads * spec.head_dim) / tp
    return act_bytes * (max(mlp, attn) + 2 * spec.hidden_size)


def activation_peak_bytes(spec: ModelSpec, dep: Deployment, batch, prompt, rt: Runtime,
                          act_bytes: float = 2.0):
    """Prefill peak of transient memory on one GPU (vectorised over batch and prompt).

    paged: vLLM profiles one forward of ``max_num_batched_tokens`` tokens (chunked prefill caps
    every step at that), and samples ``max_num_seqs`` rows of fp32 logits.
    transformers: the whole prompt of every sequence goes through at once; logits are computed
    in fp32 for the last position only (generate's logits_to_keep=1).
    """
    per_tok = activation_bytes_per_token(spec, dep, act_bytes)
    vocab_rank = spec.vocab_size / dep.tp
    if dep.engine == "paged":
        tokens = np.minimum(np.asarray(batch) * np.asarray(prompt), dep.mnbt)
        tokens = np.maximum(tokens, dep.mnbt) if rt.paged_profiles_full_budget else tokens
        logits = dep.seqs * spec.vocab_size * 4.0
    else:
        tokens = np.asarray(batch, dtype=float) * np.asarray(prompt, dtype=float)
        logits = np.asarray(batch, dtype=float) * vocab_rank * 4.0
    return tokens * per_tok * rt.activation_factor + logits


def overhead_bytes(dep: Deployment, rt: Runtime) -> float:
    """Memory outside PyTorch's allocator: CUDA context, cuBLAS/NCCL workspaces (+ CUDA graphs in vLLM)."""
    extra = rt.nccl_bytes if dep.tp * dep.pp > 1 else 0.0
    if dep.engine == "paged":
        return rt.paged_non_torch_bytes + rt.paged_cudagraph_bytes + extra
    return rt.cuda_context_bytes + extra


@dataclass(frozen=True)
class MemoryModel:
    """A model reduced to the few scalars the memory formulas need, for one deployment and GPU."""

    spec: ModelSpec
    gpu: GpuSpec
    dep: Deployment
    weights_bytes: float
    groups: tuple[kvmod.KvGroup, ...]
    overhead: float
    capacity_bytes: float
    runtime: Runtime
    engine_kv_budget_bytes: float | None = None  # the serving engine's own start-up pool (planner/startup.py)

    @classmethod
    def build(cls, spec: ModelSpec, gpu: GpuSpec, dep: Deployment, table: FormatTable, rt: Runtime) -> MemoryModel:
        check_parallelism(spec, dep)
        groups = kvmod.layer_groups(spec, dep.kv_dtype, dep.engine, dep.tp, state_bytes=2.0)
        # PP: each stage caches only its own layers; plan the fullest stage.
        frac = stage_layers(spec.num_layers, dep.pp).max() / spec.num_layers
        groups = tuple(kvmod.KvGroup(g.kind, g.layers, g.window, g.bytes_per_token * frac, g.bytes_per_seq * frac)
                       for g in groups)
        # TensorRT-LLM's fraction is of the memory free after its profiling peak, not of the device (planner/startup.py
        # trtllm_startup): the whole device is what its weights, pool and activations share
        cap = gpu.total_memory_bytes * (dep.util if dep.engine == "paged" and dep.server != "trtllm" else 1.0)
        return cls(spec, gpu, dep, weight_bytes_per_gpu(spec, table, dep), groups, overhead_bytes(dep, rt), cap, rt)

    def kv_bytes(self, batch, context):
        return kvmod.kv_cache_bytes(self.groups, batch, context, self.dep.engine, self.dep.block_size,
                                    self.dep.mnbt)

    def activations(self, batch, prompt):
        return activation_peak_bytes(self.spec, self.dep, batch, prompt, self.runtime)

    def kv_budget_bytes(self) -> float:
        """A paged engine's KV-cache room per GPU: the engine's own start-up arithmetic for its
        version when the plan was built with it (``engine_kv_budget_bytes``, planner/startup.py),
        else the allowed memory less the weights, one chunk's activation peak and the non-torch
        memory (may be negative: nothing left for a cache)."""
        if self.engine_kv_budget_bytes is not None:
            return float(self.engine_kv_budget_bytes)
        act = float(self.activations(1, self.dep.mnbt))
        return float(self.capacity_bytes - self.weights_bytes - act - self.overhead)

    def pool_shortfall(self, total_bytes: float) -> str | None:
        """When a batch that does not fit has an analytic total within the usable memory, the engine's start-up pool
        is what is short (``plan``): the clause that says so ("the engine's start-up pool is 4.53 GiB", or empty),
        for the reason `plan` and `fit` give; None when the total itself is over or there is no engine pool."""
        pool = self.engine_kv_budget_bytes
        if pool is None or total_bytes > self.capacity_bytes:
            return None
        return (f"the engine's start-up pool is {pool / 2**30:.2f} GiB" if pool > 0 else
                "the engine's start-up pool is empty (its weights and reserve leave no room)")

    def plan(self, batch, prompt, output=0) -> dict[str, np.ndarray]:
        """Memory of ``batch`` sequences of ``prompt + output`` tokens, per GPU (vectorised). With the engine's
        own start-up pool (``engine_kv_budget_bytes``) the batch fits only when its KV cache also fits that pool:
        the engine allocates the pool once at start-up and holds no more requests than it has blocks for (vLLM
        v0.11.0 vllm/v1/core/kv_cache_manager.py allocate_slots returns None when the free blocks run out, and the
        scheduler queues or preempts), whatever the analytic total says."""
        batch = np.asarray(batch, dtype=float)
        ctx = np.asarray(prompt, dtype=float) + np.asarray(output, dtype=float)
        kv = self.kv_bytes(batch, ctx)
        act = self.activations(batch, prompt)
        total = self.weights_bytes + kv + act + self.overhead
        fits = total <= self.capacity_bytes
        if self.engine_kv_budget_bytes is not None:
            fits = fits & (kv <= self.engine_kv_budget_bytes)
        return {"weights_bytes": np.broadcast_to(self.weights_bytes, np.shape(total)), "kv_cache_bytes": kv,
                "activation_bytes": act, "overhead_bytes": np.broadcast_to(self.overhead, np.shape(total)),
                "total_bytes": total, "capacity_bytes": np.broadcast_to(self.capacity_bytes, np.shape(total)),
                "headroom_bytes": self.capacity_bytes - total, "fits": fits}

    def max_batch(self, prompt, output=0):
        """Largest batch whose plan fits, at this context (0 when not even one fits)."""
        ctx = np.asarray(prompt, dtype=float) + np.asarray(output, dtype=float)
        per_seq = self.kv_bytes(1, ctx)
        act_per_seq = self.activations(1, prompt) - self.activations(0, prompt)
        fixed = self.weights_bytes + self.overhead + self.activations(0, prompt)
        room = self.capacity_bytes - fixed
        guess = np.floor(np.where(per_seq + act_per_seq > 0, room / np.maximum(per_seq + act_per_seq, 1e-9), MAX_BATCH))
        guess = np.clip(guess, 0, MAX_BATCH)
        # paged activations saturate at max_num_batched_tokens: refine upward where that lets more in,
        # doubling the step while the larger batch fits, then bisecting the last step
        span = np.ones_like(guess)
        for _ in range(22):  # 2^21 > MAX_BATCH
            trial = np.minimum(guess + span, MAX_BATCH)
            grow = (trial > guess) & self.plan(trial, prompt, output)["fits"]
            if not np.any(grow):
                break
            guess, span = np.where(grow, trial, guess), np.where(grow, 2 * span, span)
        hi = np.minimum(guess + span, MAX_BATCH + 1)  # the first batch known not to fit (or past the cap)
        while np.any(hi - guess > 1):
            mid = np.floor((guess + hi) / 2)
            ok = self.plan(mid, prompt, output)["fits"]
            open_ = hi - guess > 1
            guess, hi = np.where(open_ & ok, mid, guess), np.where(open_ & ~ok, mid, hi)
        while True:  # never report a batch that does not fit
            bad = (guess > 0) & ~self.plan(np.maximum(guess, 1), prompt, output)["fits"]
            if not np.any(bad):
                return guess.astype(np.int64)
            guess = np.where(bad, guess - 1, guess)

    def max_context(self, batch, max_len: int = MAX_CONTEXT):
        """Longest context (prompt, no output) that fits at this batch, by bisection (vectorised)."""
        batch = np.asarray(batch, dtype=float)
        lo = np.zeros(np.shape(batch))
        hi = np.full(np.shape(batch), float(max_len))
        top_fits = self.plan(batch, hi)["fits"]
        for _ in range(int(np.ceil(np.log2(max_len))) + 1):
            mid = np.floor((lo + hi + 1) / 2)
            ok = self.plan(batch, mid)["fits"]
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid - 1)
        return np.where(top_fits, max_len, lo).astype(np.int64)
