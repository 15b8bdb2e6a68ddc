"""The memory terms a serving engine measures at start-up, estimated from the config.

Each estimator returns bytes on the worker that decides the pool, with the formula's source. The
engine constants they use (CUDA context, NCCL buffers, the sampler's bytes per logit, ...) live in
``profiles/engines/<engine>.json`` under ``constants``, each with its source: a figure from the
engine's code or a fit on the public start-up logs of ``profiles/engine-logs`` (docs/engine-memory.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .engines import EngineTable, Era
from .formats import FormatTable
from .gpus import GpuSpec
from .memory import Deployment
from .spec import LINEAR, MAMBA, ModelSpec

DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0}


@dataclass(frozen=True)
class Context:
    spec: ModelSpec
    gpu: GpuSpec
    dep: Deployment
    era: Era
    table: EngineTable
    formats: FormatTable
    entry_point: str
    enforce_eager: bool
    weight_bytes: float        # weights on the fullest rank (planner/memory.weight_bytes_per_gpu)

    def c(self, name: str) -> float:
        return float(self.table.constant(name))

    def src(self, name: str) -> str:
        return f"{self.table.engine} constant {name}: {self.table.constant_source(name)}"

    @property
    def act_bytes(self) -> float:
        return DTYPE_BYTES.get(self.spec.dtype, 2.0)


@dataclass(frozen=True)
class Estimate:
    name: str
    bytes: float
    source: str


def rotary_cache_bytes(spec: ModelSpec, act_bytes: float) -> float:
    """The rotary cos/sin cache built while the model loads (counted with the weights):
    max_position_embeddings x rotary_dim in the model dtype, one per distinct rope configuration
    (v0.10.2 vllm/model_executor/layers/rotary_embedding/base.py:35-52; shared through _ROPE_DICT)."""
    scale = dict(spec.rope_scaling).get("factor", 1.0) if dict(spec.rope_scaling).get("type") in ("yarn",) else 1.0
    return spec.max_position_embeddings * scale * spec.rotary_dim * act_bytes


def weights(ctx: Context) -> Estimate:
    rot = rotary_cache_bytes(ctx.spec, ctx.act_bytes)
    return Estimate("weights", ctx.weight_bytes + rot,
                    "tensor inventory x weight format, split by TP/PP (planner/memory.weight_bytes_per_gpu) + "
                    f"rotary cos/sin cache {rot / 2**20:.0f} MiB; vLLM logs the torch memory allocated while "
                    "loading (v0.10.2 vllm/platforms/cuda.py:204-209)")


def forward_bytes(spec: ModelSpec, tp: int, tokens: float, act_bytes: float) -> float:
    """Live activations at a layer's widest point for ``tokens`` tokens on one rank: the residual
    and normed hidden states (2 x hidden) plus the larger of the MLP (gate_up 2I + activation I,
    split by TP) and the attention projections (q, k, v and the output, split by TP)."""
    h = spec.hidden_size
    mlp = 3 * spec.intermediate_size / tp if not all(spec.moe_layers) else 0.0
    if spec.is_moe and spec.shared_expert_intermediate_size:
        mlp = max(mlp, 3 * spec.shared_expert_intermediate_size / tp)
    q = spec.num_heads * spec.head_dim / tp
    kv = max(1, spec.num_kv_heads // tp) * (spec.head_dim + spec.v_head_dim)
    attn = 2 * q + kv
    return tokens * (2 * h + max(mlp, attn)) * act_bytes


def moe_workspace_bytes(spec: ModelSpec, tp: int, tokens: float, act_bytes: float, chunk: float) -> float:
    """fused_moe's intermediate caches: M x top_k x (max(N, K) + N / 2) elements with M = min(tokens,
    chunk), N = 2 x moe_intermediate / TP (the w13 shard), K = hidden, which TP does not split
    (v0.10.2 vllm/model_executor/layers/fused_moe/fused_moe.py:1553-1590)."""
    if not spec.is_moe:
        return 0.0
    m = min(tokens, chunk) if chunk else tokens
    n = 2 * spec.moe_intermediate_size / tp
    return m * spec.experts_per_token * (max(n, spec.hidden_size) + n / 2) * act_bytes


def sampler_rows(ctx: Context) -> int:
    rows = ctx.dep.max_num_seqs
    if ctx.era["profile_seqs"] != "max_num_seqs":
        rows = min(rows, ctx.dep.max_num_batched_tokens)
    return rows


def activation_peak(ctx: Context) -> Estimate:
    """The torch peak of the profile run above what was allocated before it: the larger of the
    forward of max_num_batched_tokens tokens (x a fitted factor, with MoE workspaces) and the sampler
    over its rows x the vocabulary (x a fitted bytes per logit)."""
    s, dep = ctx.spec, ctx.dep
    t = dep.max_num_batched_tokens
    chunk = ctx.c("fused_moe_chunk_tokens") if ctx.era["core"] == "v1" else 0.0
    fwd = (forward_bytes(s, dep.tp, t, ctx.act_bytes) * ctx.c("activation_forward_factor")
           + moe_workspace_bytes(s, dep.tp, t, ctx.act_bytes, chunk))
    rows = sampler_rows(ctx)
    per_logit = ctx.era.rule("sampler_bytes_per_logit")
    samp = rows * s.vocab_size * per_logit.value + t * s.hidden_size * ctx.act_bytes if ctx.era["sampler_in_profile"] else 0.0
    return Estimate("activation_peak", max(fwd, samp),
                    f"max(forward of {t:,} tokens {fwd / 2**30:.2f} GiB, sampler {rows:,} rows x vocab "
                    f"{s.vocab_size:,} x {per_logit.value:g} B = {samp / 2**30:.2f} GiB); "
                    f"{ctx.src('activation_forward_factor')}; sampler: {per_logit.source}")


def vllm_terms(ctx: Context) -> list[Estimate]:
    """Every term vLLM may subtract; the era says which it does (``budget_terms``)."""
    act = activation_peak(ctx)
    out = [weights(ctx), act,
           Estimate("allocator_slack", act.bytes * ctx.c("allocator_slack_fraction"), ctx.src("allocator_slack_fraction")),
           Estimate("cuda_context", ctx.c("cuda_context_bytes"), ctx.src("cuda_context_bytes")),
           nccl(ctx),
           Estimate("runtime_workspaces", ctx.c("runtime_workspaces_bytes"), ctx.src("runtime_workspaces_bytes")),
           cuda_graph_estimate(ctx),
           Estimate("persistent_buffers", ctx.dep.max_num_batched_tokens * ctx.spec.hidden_size * ctx.act_bytes,
                    "model-runner input buffers (max_num_batched_tokens x hidden), counted from v0.27 "
                    "(v0.27.0 vllm/utils/mem_utils.py:234-326)")]
    return out


def nvswitch(gpu: GpuSpec) -> bool:
    """NVLink 4/5 boards (HGX H100/H200/B200...): NCCL sets up NVLink SHARP (NVLS) buffers there."""
    name = gpu.interconnect_name.lower()
    return "nvlink" in name and any(g in name for g in ("4", "5", "6"))


def nearest_degree(table: dict, ranks: int) -> int:
    """The listed degree (a key of a per-TP constant) nearest ``ranks``."""
    return min((int(k) for k in table), key=lambda k: abs(k - ranks))


def nccl_bytes(table: dict, gpu: GpuSpec, ranks: int) -> float:
    """NCCL and custom all-reduce memory per GPU for ``ranks`` GPUs (the nearest listed degree)."""
    if ranks <= 1:
        return 0.0
    return float(table[str(nearest_degree(table, ranks))])


def nccl(ctx: Context) -> Estimate:
    ranks = ctx.dep.tp * ctx.dep.pp
    if ranks <= 1:
        return Estimate("nccl", 0.0, "no collective communicator at TP = PP = 1")
    key = "nccl_bytes_nvswitch" if nvswitch(ctx.gpu) else "nccl_bytes_other"
    return Estimate("nccl", nccl_bytes(ctx.table.constant(key), ctx.gpu, ranks),
                    f"{ranks} ranks on {ctx.gpu.interconnect_name or 'PCIe'}; {ctx.src(key)}")


def capture_sizes(max_num_seqs: int, max_num_batched_tokens: int) -> tuple[list[int], list[int]]:
    """vLLM's default CUDA-graph batch sizes: 1, 2, 4, then steps of 8 to 256 and of 16 to
    min(2 x max_num_seqs, 512, max_num_batched_tokens) for PIECEWISE graphs; FULL (decode) graphs
    only up to max_num_seqs (v0.20.2 vllm/config/vllm.py:1470-1530; the logs print e.g.
    'PIECEWISE=51 (largest=512), FULL=35 (largest=256)')."""
    top = min(2 * max_num_seqs, 512, max_num_batched_tokens)
    sizes = [i for i in (1, 2, 4) if i <= top]
    sizes += list(range(8, min(top + 1, 256), 8))
    sizes += list(range(256, top + 1, 16))
    return sizes, [x for x in sizes if x <= max_num_seqs]


def cuda_graph_estimate(ctx: Context) -> Estimate:
    """vLLM's CUDA-graph estimate (v0.18+, subtracted by default from v0.20): per graph mode, the
    first capture (the largest size) plus (sizes - 1) x the second capture (at least 1 MiB); FULL and
    PIECEWISE share the first (v0.20.2 vllm/v1/worker/gpu_model_runner.py:5949-6045). A graph's
    bytes grow with its largest batch x hidden: per graph = k x largest x hidden x dtype bytes;
    the first capture and k are engine constants fitted on logs that print 'Estimated CUDA graph
    memory'."""
    mode = ctx.era.get("cuda_graphs", "outside")
    if mode not in ("estimate_on", "estimate_opt_in") or ctx.enforce_eager:
        why = "--enforce-eager" if ctx.enforce_eager else f"{ctx.era.label} does not subtract CUDA-graph memory"
        return Estimate("cuda_graph_estimate", 0.0, why)
    piecewise, full = capture_sizes(ctx.dep.max_num_seqs, ctx.dep.max_num_batched_tokens)
    k = ctx.c("cuda_graph_per_graph_factor")
    g = ctx.c("cuda_graph_first_capture_bytes")
    for sizes in (piecewise, full):
        if sizes:
            g += (len(sizes) - 1) * max(2**20, k * sizes[-1] * ctx.spec.hidden_size * ctx.act_bytes)
    return Estimate("cuda_graph_estimate", g, f"PIECEWISE={len(piecewise)}, FULL={len(full)} capture sizes; "
                    f"{ctx.src('cuda_graph_first_capture_bytes')}; {ctx.src('cuda_graph_per_graph_factor')}")


def state_layers(spec: ModelSpec) -> int:
    return sum(k in (LINEAR, MAMBA) for k in spec.layer_kinds)


def trtllm_terms(ctx: Context) -> list[Estimate]:
    """What TensorRT-LLM's memory profiling counts in its peak (besides the temporary KV cache): the weights
    (torch), the memory outside torch once the model is built (CUDA context, cuBLAS / NCCL / all-reduce
    workspaces: a constant by TP fitted on start-up logs) and the torch peak of the dummy pass of max_num_tokens
    prompt tokens (the forward's widest point x a fitted factor, plus the MoE workspace)."""
    s, dep = ctx.spec, ctx.dep
    t = dep.max_num_batched_tokens
    fwd = (forward_bytes(s, dep.tp, t, ctx.act_bytes) * ctx.c("activation_forward_factor")
           + moe_workspace_bytes(s, dep.tp, t, ctx.act_bytes, 0.0))
    rot = rotary_cache_bytes(s, ctx.act_bytes)
    table = ctx.table.constant("non_torch_bytes")
    ranks = dep.tp * dep.pp
    near = nearest_degree(table, ranks)
    return [Estimate("weights", ctx.weight_bytes + rot,
                     "tensor inventory x weight format, split by TP/PP (planner/memory.weight_bytes_per_gpu) + rotary "
                     f"cos/sin cache {rot / 2**20:.0f} MiB; TensorRT-LLM logs it as 'Memory used after loading model "
                     "weights (inside torch)'"),
            Estimate("non_torch", float(table[str(near)]), f"{ranks} rank(s) (table entry {near}); "
                     f"{ctx.src('non_torch_bytes')}"),
            Estimate("activation_peak", fwd, f"forward of {t:,} tokens (max_num_tokens) "
                     f"{fwd / 2**30:.2f} GiB; {ctx.src('activation_forward_factor')}")]
