"""The KV-cache pool a serving engine allocates at start-up, line by line, version by version.

An engine sizes its pool once, at start-up, from what it measures on the GPU. This module redoes
that arithmetic from the model's shapes and the engine's rules for the given version
(``planner/engines.py``, ``profiles/engines/<engine>.json``):

    vLLM:    kv_budget = requested - sum(terms the era subtracts)   (requested = total x utilization)
             blocks    = kv_budget // page bytes // layers per pool (minimum over the workers)
    SGLang:  rest      = free after load - free before load x (1 - mem_fraction_static)
             tokens    = rest // cell bytes (all layers of one rank)

Every term is a ``Term`` with bytes, whether this era subtracts it, and where the figure comes from
(a formula over the config, or an engine constant fitted on public start-up logs). The physical
terms are estimated in ``planner/startup_terms.py``; docs/engine-memory.md gives each formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import kv as kvmod
from . import startup_terms as terms
from .engines import EngineTable, Era, Version, scheduler_defaults
from .errors import PlannerInputError, require_fraction, require_positive_int
from .formats import FormatTable
from .gpus import GpuSpec
from .memory import MAX_CONTEXT, Deployment, check_parallelism, weight_bytes_per_gpu
from .spec import LINEAR, MAMBA, ModelSpec

GIB = 2**30


@dataclass(frozen=True)
class EngineSettings:
    """What a user passes to the engine; None means the engine's default for its version."""

    engine: str = "vllm"
    version: str | None = None
    entry_point: str = "serve"
    tp: int = 1
    pp: int = 1
    weights: str = "bf16"
    kv_cache_dtype: str = "auto"
    gpu_memory_utilization: float | None = None   # vLLM
    mem_fraction_static: float | None = None      # SGLang
    free_gpu_memory_fraction: float | None = None  # TensorRT-LLM (kv_cache_config)
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    kv_cache_memory_bytes: float | None = None    # vLLM --kv-cache-memory: the budget, as given
    num_gpu_blocks_override: int | None = None
    max_total_tokens: int | None = None           # SGLang --max-total-tokens

    def __post_init__(self):
        require_positive_int("tp", self.tp, maximum=1024)
        require_positive_int("pp", self.pp, maximum=1024)
        for name in ("gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction"):
            if getattr(self, name) is not None:
                require_fraction(name, getattr(self, name))
        for name, top in (("max_model_len", MAX_CONTEXT), ("max_num_seqs", 1 << 20),
                          ("max_num_batched_tokens", MAX_CONTEXT), ("block_size", 4096),
                          ("num_gpu_blocks_override", 1 << 40), ("max_total_tokens", 1 << 40)):
            if getattr(self, name) is not None:
                require_positive_int(name, getattr(self, name), maximum=top)


@dataclass(frozen=True)
class Term:
    name: str
    bytes: float
    counted: bool    # subtracted from the KV budget in this era
    source: str


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str      # "given", or the era's rule and its citation


@dataclass(frozen=True)
class StartupMemory:
    """The engine's start-up memory lines for one GPU (the worker that decides the pool)."""

    engine: str
    version: str
    era: str
    gpu: str
    total_bytes: float
    requested_bytes: float
    terms: tuple[Term, ...]
    kv_budget_bytes: float
    bytes_per_token: float          # all layers of one rank, for a context shorter than every window
    block_size: int
    num_blocks: int
    kv_tokens: int                  # as the engine logs it ("GPU KV cache size" / "#tokens")
    max_model_len: int
    max_concurrency: float
    settings: tuple[tuple[str, Setting], ...]
    rules: tuple[tuple[str, str], ...]   # (rule, "value -- source") applied
    notes: tuple[str, ...] = field(default=())

    def term(self, name: str) -> Term | None:
        return next((t for t in self.terms if t.name == name), None)

    def setting(self, name: str) -> Any:
        return dict(self.settings)[name].value

    @property
    def fits(self) -> bool:
        return self.kv_tokens > 0 and self.max_concurrency >= 1


# ---- settings: given, else the era's default ---------------------------------------------------
def default_max_model_len(spec: ModelSpec) -> tuple[int, str]:
    """vLLM's derived max_model_len: the config's max_position_embeddings, times the rope-scaling
    factor unless the scaling is llama3 / longrope / su (yarn: original x factor). Source: v0.10.2
    vllm/config/__init__.py:2805-2897 (_get_and_verify_max_len); Gemma 3 skips the factor."""
    n = spec.max_position_embeddings or 2048
    rs = dict(spec.rope_scaling)
    if rs and rs["type"] not in ("su", "longrope", "llama3", "default") and "gemma3" not in spec.model_type:
        if rs["type"] == "yarn" and rs["original_max_position_embeddings"]:
            n = rs["original_max_position_embeddings"]
        n = int(n * rs["factor"])
    return n, "the model's max_position_embeddings (x rope-scaling factor), vLLM _get_and_verify_max_len"


def is_auto(kv_dtype) -> bool:
    """Whether a KV dtype setting leaves the choice to the engine ("auto", or none given)."""
    return str(kv_dtype).lower() in ("auto", "", "none")


def _kv_dtype(spec: ModelSpec, s: EngineSettings, era: Era | None, table: EngineTable, version: Version) -> Setting:
    """The KV cache dtype the engine allocates: the one given, else ("auto") the checkpoint's own KV scheme where this
    engine release reads it (``kv_auto_from_checkpoint`` in profiles/engines: vLLM from 0.14 for ModelOpt, 0.15 for
    compressed-tensors; SGLang from 0.5.3 / 0.5.4 / 0.5.19; TensorRT-LLM's PyTorch flow), else the model's dtype."""
    given = not is_auto(s.kv_cache_dtype)
    if s.weights in ("bf16", "fp16"):  # served in that dtype (--dtype): the engine's cache follows it
        model, model_why = s.weights, "the dtype the model is served in"
    elif spec.dtype != "fp32":
        model, model_why = spec.dtype, "the model's dtype"
    else:
        model, model_why = "bf16", ("the dtype a 32-bit checkpoint is served in: bf16 (vllm/config/model.py "
                                    "_resolve_auto_dtype, 'Downcast for float32 models' to the platform's first "
                                    "supported dtype; SGLang's ModelConfig the same)")
    if era and era.get("kv_dtype_follows_model"):
        return Setting(model, "given" if given else f"auto: {model_why}")
    scheme, rule = checkpoint_kv_rule(spec, table, version)
    forced = rule is not None and given and version < Version.parse(rule.get("overrides_given_until", "0.0"))
    if rule is not None and (not given or forced):
        if scheme.dtype not in kvmod.KV_DTYPES:  # NVFP4: 4-bit elements + block scales, not modelled
            return Setting(model, f"auto: {model_why} for the bytes; the checkpoint's {scheme.field} asks for "
                                       f"an {scheme.dtype} cache, which {table.engine} {version} allocates and the planner "
                                       f"does not model (an upper bound: give kv_dtype fp8 or bf16 to choose)")
        what = f"the checkpoint's KV scheme ({scheme.field}: {scheme.dtype})"
        if forced:
            return Setting(scheme.dtype, f"{what} over the given {s.kv_cache_dtype}: {table.engine} {rule['since']} to "
                                         f"{rule['overrides_given_until']} (exclusive) applies it whatever is given")
        return Setting(scheme.dtype, f"auto: {what}, which {table.engine} {rule['since']} and later read")
    if given:
        return Setting(kvmod.kv_dtype(s.kv_cache_dtype).name, "given")
    if scheme is not None and scheme.dtype:
        return Setting(model, f"auto: {model_why} ({table.engine} {version} does not read the checkpoint's "
                                   f"{scheme.field}, {scheme.dtype}, for a {scheme.method or 'its'} checkpoint"
                                   f"{' with MLA' if spec.is_mla else ''}: give kv_dtype {scheme.dtype} if it is served so)")
    return Setting(model, f"auto: {model_why}")


def auto_kv_dtype(spec: ModelSpec, table: EngineTable, version: str | None = None, weights: str = "") -> Setting:
    """The cache the engine of ``table`` at ``version`` (default: its newest) allocates under "auto" for the model
    served with ``weights`` (a 16-bit format is the dtype it is served in; "": the checkpoint's own)."""
    era, v, _ = table.resolve(version)
    s = EngineSettings(engine=table.engine, version=version, kv_cache_dtype="auto", weights=weights or "checkpoint")
    return _kv_dtype(spec, s, era, table, v)


def checkpoint_kv_rule(spec: ModelSpec, table: EngineTable, version: Version):
    """(the checkpoint's KV scheme or None, the engine rule of ``version`` that reads it or None)."""
    from .quantconfig import kv_scheme
    scheme = kv_scheme(spec)
    if scheme is None or not scheme.dtype:
        return scheme, None
    rules = next((r.value for k, r in table.constants if k == "kv_auto_from_checkpoint"), [])
    for r in rules:
        if (Version.parse(r["since"]) <= version and any(scheme.method.startswith(m) for m in r["methods"])
                and scheme.dtype in r["kv"] and not (r.get("not_mla") and spec.is_mla)
                and (scheme.per_tensor_symmetric or not r.get("per_tensor_symmetric"))
                and (not r.get("weights_algo") or scheme.weights_algo == r["weights_algo"])):
            return scheme, r
    return scheme, None


def _resolve(spec: ModelSpec, gpu: GpuSpec, s: EngineSettings, era: Era, table: EngineTable,
             version: Version) -> dict[str, Setting]:
    out: dict[str, Setting] = {}

    def given_or(name: str, value: Any, source: str) -> Any:
        v = getattr(s, name)
        out[name] = Setting(v, "given") if v is not None else Setting(value, source)
        return out[name].value

    def rule(name: str) -> str:
        r = era.rule(name)
        return f"default of {era.label}: {r.source}"

    mml, why = default_max_model_len(spec)
    given_or("max_model_len", mml, why)
    given_or("gpu_memory_utilization", era["gpu_memory_utilization"], rule("gpu_memory_utilization"))
    bs = era["block_size"]
    if spec.is_mla and era.get("mla_block_size"):  # MLA and sparse MLA (DeepSeek-V3.2)
        bs = era["mla_block_size"]
    given_or("block_size", bs, rule("block_size"))
    name = gpu.nvml_names[0] if gpu.nvml_names else gpu.display_name
    sd = scheduler_defaults(era, s.entry_point, gpu.total_memory_bytes, name, out["max_model_len"].value,
                            sliding_or_mla=spec.is_mla or "sliding" in spec.layer_kinds)
    given_or("max_num_seqs", sd.max_num_seqs, f"default of {era.label}: {sd.source}")
    given_or("max_num_batched_tokens", sd.max_num_batched_tokens, f"default of {era.label}: {sd.source}")
    out["kv_cache_dtype"] = _kv_dtype(spec, s, era, table, version)
    return out


# ---- vLLM ----------------------------------------------------------------------------------------
def vllm_startup(spec: ModelSpec, gpu: GpuSpec, s: EngineSettings, table: EngineTable,
                 formats: FormatTable) -> StartupMemory:
    era, version, note = table.resolve(s.version)
    st = _resolve(spec, gpu, s, era, table, version)
    val = {k: v.value for k, v in st.items()}
    dep = Deployment(weights=s.weights, kv_dtype=val["kv_cache_dtype"], engine="paged", tp=s.tp, pp=s.pp,
                     gpu_memory_utilization=val["gpu_memory_utilization"], block_size=val["block_size"],
                     max_num_batched_tokens=val["max_num_batched_tokens"], max_num_seqs=val["max_num_seqs"])
    check_parallelism(spec, dep)
    total = gpu.total_memory_bytes
    u = val["gpu_memory_utilization"]
    requested = math.ceil(total * u) if era["requested"] == "ceil_util_x_total" else total * u
    ctx = terms.Context(spec, gpu, dep, era, table, formats, s.entry_point, s.enforce_eager,
                        weight_bytes_per_gpu(spec, formats, dep))
    all_terms = terms.vllm_terms(ctx)
    counted = set(era["budget_terms"]) | ({"cuda_graph_estimate"} if era["cuda_graphs"] == "estimate_on" else set())
    ts = tuple(Term(t.name, t.bytes, t.name in counted, t.source) for t in all_terms)
    budget = requested - sum(t.bytes for t in ts if t.counted)
    notes = [note] if note else []
    if s.kv_cache_memory_bytes:
        budget = float(s.kv_cache_memory_bytes)
        notes.append("--kv-cache-memory given: the budget is that figure; gpu_memory_utilization is ignored")
    pool = kv_pool(spec, dep, era, max(budget, 0.0), val["max_model_len"], s.num_gpu_blocks_override)
    rules = tuple((k, f"{r.value} -- {r.source}") for k, r in era.rules)
    return StartupMemory("vllm", str(version), era.label, gpu.id, total, requested, ts, budget,
                         pool.bytes_per_token, pool.block_size, pool.num_blocks, pool.logged_tokens,
                         val["max_model_len"], pool.concurrency, tuple(st.items()), rules,
                         tuple(notes + list(pool.notes)))


@dataclass(frozen=True)
class Pool:
    block_size: int
    page_bytes: float
    layers_per_pool: int
    num_blocks: int
    blocks_per_request: int
    logged_tokens: int
    concurrency: float
    bytes_per_token: float
    notes: tuple[str, ...] = ()


def kv_pool(spec: ModelSpec, dep: Deployment, era: Era, budget: float, max_len: int,
            override: int | None = None) -> Pool:
    """Blocks, logged tokens and max concurrency from the budget (vLLM's kv_cache_utils)."""
    frac = max(-(-spec.num_layers // dep.pp), 1) / spec.num_layers  # the fullest stage's layers
    groups = kvmod.layer_groups(spec, dep.kv_dtype, "paged", dep.tp, state_bytes=2.0)
    groups = tuple(kvmod.KvGroup(g.kind, max(1, round(g.layers * frac)), g.window, g.bytes_per_token,
                                 g.bytes_per_seq) for g in groups)
    attn = [g for g in groups if g.bytes_per_token > 0]
    state = [g for g in groups if g.kind in (LINEAR, MAMBA)]
    bs = dep.block_size
    per_tok_all = sum(g.layers * g.bytes_per_token for g in attn)
    hybrid_rule = era["hybrid"]
    notes: list[str] = []
    if not attn:
        raise PlannerInputError("model", "has no attention layer: vLLM sizes no paged KV cache for it",
                                "plan it with the transformers engine")
    windowed = [g for g in attn if g.window]
    if state and hybrid_rule != "shared_pool":
        raise PlannerInputError("engine_version", f"{era.label} cannot serve linear-attention / Mamba layers "
                                "in its paged pool", "choose vLLM 0.10 or later")
    if not state and (not windowed or hybrid_rule in ("unify_as_full", "unsupported")):
        # uniform: every layer one page per block; V1 divides page by page, V0 by all layers at once
        layers = sum(g.layers for g in attn)
        page = bs * per_tok_all / layers
        if era["core"] == "v0":
            n = int(budget // (bs * per_tok_all))
        else:
            n = int(budget // page // layers)
        n = override or n
        per_req = -(-max_len // bs)
        logged = _logged_tokens(era, n, 1, bs, per_req, max_len)
        by_blocks = era["kv_tokens_log"] in ("blocks", "blocks_x_block_size")
        return Pool(bs, page, layers, n, per_req, logged, n * bs / max_len if by_blocks else n / per_req,
                    per_tok_all, tuple(notes))
    return _shared_pool(groups, attn, state, dep, era, budget, max_len, override)


def _logged_tokens(era: Era, n: int, n_groups: int, min_bs: int, per_req_blocks: int, max_len: int) -> int:
    rule = era["kv_tokens_log"]
    if rule in ("blocks", "blocks_x_block_size"):
        return n * min_bs
    if rule == "blocks_per_group_x_min_block":
        return (n // n_groups) * min_bs
    return int(n / per_req_blocks * max_len)  # concurrency_x_len


def _shared_pool(groups, attn, state, dep: Deployment, era: Era, budget: float, max_len: int,
                 override: int | None) -> Pool:
    """V1's hybrid manager (0.9.1+): layers in groups of g sharing one pool of equal-size pages."""
    bs = dep.block_size
    per_tok = max(g.bytes_per_token for g in attn)
    state_page = max((g.bytes_per_seq for g in state), default=0.0)
    notes = []
    if state_page > bs * per_tok:  # v0.11.2 HybridAttentionMambaModelConfig: raise the attention block
        align = 16
        bs = align * -(-int(state_page) // int(align * per_tok))
        notes.append(f"attention block size raised to {bs} tokens so that one page holds a layer's "
                     "recurrent state (vLLM HybridAttentionMambaModelConfig)")
    page = bs * per_tok
    counts = {}
    for g in groups:
        counts[(g.kind, g.window)] = counts.get((g.kind, g.window), 0) + g.layers
    small, large = min(counts.values()), max(counts.values())
    ratio = era.get("group_size_ratio", 0)
    g_size = large if ratio and large < ratio * small else small
    n = override or int(budget // page // g_size)
    in_flight = era.get("sliding_in_flight", 1) * dep.max_num_batched_tokens
    per_req, n_groups = 0, 0
    for (kind, window), layers in counts.items():
        k = -(-layers // g_size)
        n_groups += k
        if kind in (LINEAR, MAMBA):
            per_req += k
        elif window:
            per_req += k * (-(-min(window - 1 + in_flight, max_len) // bs) + 1)
        else:
            per_req += k * -(-max_len // bs)
    logged = _logged_tokens(era, n, n_groups, bs, per_req, max_len)
    per_tok_all = sum(g.layers * g.bytes_per_token for g in attn)
    return Pool(bs, page, g_size, n, per_req, logged, n / per_req, per_tok_all, tuple(notes))


# ---- SGLang --------------------------------------------------------------------------------------
def sglang_fraction(era: Era, gpu_mem_mib: float, tp_pp: int, chunk: int, graph_bs: int) -> tuple[float, str]:
    """SGLang's default mem_fraction_static for this era (server_args.py; docs/research)."""
    r = era.rule("mem_fraction_static")
    v = r.value
    if v["kind"] == "tp_table":
        if v.get("large_card_mib") and gpu_mem_mib > v["large_card_mib"]:
            return (gpu_mem_mib - v["large_card_reserved_mib"]) / gpu_mem_mib, r.source
        return next(f for t, f in v["table"] if tp_pp >= t), r.source
    if v["kind"] == "reserved_by_class":
        reserved = next(((a + tp_pp * b) * 1024 for bound, a, b in v["classes"] if gpu_mem_mib < bound),
                        v["above_gib"] * 1024)
    else:
        reserved = (v["base_mib"] + v["per_chunk_token_mib"] * max(chunk, v["min_chunk"])
                    + v["per_graph_bs_mib"] * graph_bs + tp_pp * v["per_rank_mib"])
        if gpu_mem_mib > v["floor_above_mib"]:
            reserved = max(reserved, v["floor_mib"])
    return round((gpu_mem_mib - reserved) / gpu_mem_mib, 3), r.source


def _by_class(table: list, gpu_mem_mib: float, tp: int) -> int:
    for row in table:
        if row[0] is None or gpu_mem_mib < row[0]:
            return row[1] if len(row) == 2 or tp < 4 else row[2]
    return table[-1][1]


def sglang_startup(spec: ModelSpec, gpu: GpuSpec, s: EngineSettings, table: EngineTable,
                   formats: FormatTable) -> StartupMemory:
    era, version, note = table.resolve(s.version)
    kv_setting = _kv_dtype(spec, s, None, table, version)
    kvd = kv_setting.value
    dep = Deployment(weights=s.weights, kv_dtype=kvd, engine="paged", tp=s.tp, pp=s.pp)
    check_parallelism(spec, dep)
    st: dict[str, Setting] = {}
    mml, why = default_max_model_len(spec)
    st["max_model_len"] = Setting(s.max_model_len, "given") if s.max_model_len else Setting(mml, why)
    gpu_mib = (gpu.nvml_total_memory_bytes or gpu.total_memory_bytes) / 2**20
    fv = era["mem_fraction_static"]
    chunk = s.max_num_batched_tokens or (_by_class(fv["chunked_prefill"], gpu_mib, s.tp) if "chunked_prefill" in fv
                                         else (2048 if gpu_mib < 25000 else 8192))
    graph_bs = _by_class(fv["cuda_graph_max_bs"], gpu_mib, s.tp) if "cuda_graph_max_bs" in fv else 160
    if s.mem_fraction_static:
        st["mem_fraction_static"] = Setting(s.mem_fraction_static, "given")
    else:
        f, src = sglang_fraction(era, gpu_mib, s.tp * s.pp, chunk, graph_bs)
        st["mem_fraction_static"] = Setting(f, f"default of {era.label} for {gpu_mib:,.0f} MiB, tp x pp = "
                                               f"{s.tp * s.pp}: {src}")
    st["kv_cache_dtype"] = kv_setting
    st["max_num_batched_tokens"] = Setting(chunk, "given" if s.max_num_batched_tokens else
                                           f"chunked_prefill_size, default of {era.label} for {gpu_mib:,.0f} MiB")
    f = st["mem_fraction_static"].value
    ctx = terms.Context(spec, gpu, dep, era, table, formats, "serve", s.enforce_eager,
                        weight_bytes_per_gpu(spec, formats, dep))
    w = terms.weights(ctx)
    c = ctx.c("cuda_context_bytes")
    nccl = terms.nccl(ctx).bytes
    total = gpu.total_memory_bytes
    before = total - c - nccl
    after = before - w.bytes - ctx.c("load_temporaries_bytes")
    rest = after - before * (1 - f)
    cell, swa = _sglang_cell(spec, dep, era)
    page = s.block_size if era["page_rounding"] and s.block_size else 1
    tokens = sglang_tokens(before, after, f, cell, page, s.max_total_tokens)
    if swa:
        tokens = swa(tokens)
    # max_running_requests: min(tokens // 2, the request pool clamp(tokens / context x 512, 2048, 4096))
    # (0.4.6.post1 srt/managers/tp_worker.py:110; model_runner.py max_num_reqs)
    mml0 = st["max_model_len"].value
    pool = min(max(int(tokens / max(mml0, 1) * 512), 2048), 4096)
    st["max_num_seqs"] = Setting(s.max_num_seqs, "given") if s.max_num_seqs else Setting(
        max(1, min(tokens // 2, pool)), "max_running_requests = min(tokens // 2, request pool): SGLang's default")
    ts = (Term("free_before_load", before, False, f"total - CUDA context - NCCL; {ctx.src('cuda_context_bytes')}"),
          Term("weights", w.bytes, True, w.source),
          Term("cuda_context", c, False, ctx.src("cuda_context_bytes")),
          Term("nccl", nccl, False, terms.nccl(ctx).source),
          Term("outside_static_fraction", before * (1 - f), True,
               "free before load x (1 - mem_fraction_static): activations, CUDA graphs, sampler"))
    rules = tuple((k, f"{r.value} -- {r.source}") for k, r in era.rules)
    mml = st["max_model_len"].value
    return StartupMemory("sglang", str(version), era.label, gpu.id, total, before * f, ts, rest, cell, 1,
                         tokens, tokens, mml, tokens / mml if mml else 0.0, tuple(st.items()), rules,
                         (note,) if note else ())


def sglang_tokens(before: float, after: float, fraction: float, cell: float, page: int = 1,
                  cap: int | None = None) -> int:
    """max_total_num_tokens = int((A - B x (1 - f)) // cell), rounded down to a page, capped
    (0.4.6.post1 srt/model_executor/model_runner.py:690-712; page rounding 0.4.4.post4 :745-749).
    ``before`` (B) and ``after`` (A): free bytes before and after the weights load."""
    rest = after - before * (1 - fraction)
    tokens = max(int(rest // cell), 0) if cell else 0
    tokens = tokens // page * page
    return min(tokens, cap) if cap else tokens


def _sglang_cell(spec: ModelSpec, dep: Deployment, era: Era):
    """Bytes per token of every attention layer on one rank, and the sliding-window split (0.4.9+):
    full = int(T x L / (r x L_swa + L_full)) (0.4.9.post6 model_runner.py:1036-1062)."""
    groups = kvmod.layer_groups(spec, dep.kv_dtype, "paged", dep.tp)
    cell = rank_kv_bytes_per_token(spec, dep)
    n_swa = sum(g.layers for g in groups if g.window)
    n_full = sum(g.layers for g in groups if g.bytes_per_token and not g.window)
    r = era["hybrid_swa_ratio"]
    if not (r and n_swa and n_full):
        return cell, None
    layers = n_swa + n_full
    return cell, (lambda t: int(t * layers / (r * n_swa + n_full)))


# ---- TensorRT-LLM (PyTorch backend) -----------------------------------------------------------
def trtllm_startup(spec: ModelSpec, gpu: GpuSpec, s: EngineSettings, table: EngineTable,
                   formats: FormatTable) -> StartupMemory:
    """TensorRT-LLM's KvCacheCreator (tensorrt_llm/_torch/pyexecutor/_util.py, ``estimate_max_tokens`` and
    ``_cal_max_tokens``): a dummy pass of max_num_tokens prompt tokens runs on a temporary KV cache; then

        peak      = torch peak during it + memory outside torch (CUDA context, NCCL, workspaces, graphs)
        available = (device total - peak + the temporary cache) x free_gpu_memory_fraction
        tokens    = available // KV bytes per token (all attention layers of one rank), in 32-token blocks

    The fraction applies to what is free after the peak, not to the device (vLLM's utilization does)."""
    era, version, note = table.resolve(s.version)
    _trtllm_refuse(spec, s)
    kv_setting = _kv_dtype(spec, s, None, table, version)
    kvd = kv_setting.value
    sched = era["scheduler"]

    def given_or(name: str, value: Any, what: str, rule: str) -> Setting:
        v = getattr(s, name)
        return Setting(v, "given") if v else Setting(value, f"{what}default of {era.label}: {era.rule(rule).source}")

    st: dict[str, Setting] = {}
    mml, _ = default_max_model_len(spec)
    st["max_model_len"] = Setting(s.max_model_len, "given") if s.max_model_len else Setting(
        mml, "max_seq_len: the model config's max_position_embeddings (x rope-scaling factor)")
    st["free_gpu_memory_fraction"] = given_or("free_gpu_memory_fraction", era["free_gpu_memory_fraction"], "",
                                              "free_gpu_memory_fraction")
    st["max_num_batched_tokens"] = given_or("max_num_batched_tokens", sched["max_num_batched_tokens"],
                                            "max_num_tokens, ", "scheduler")
    st["max_num_seqs"] = given_or("max_num_seqs", sched["max_num_seqs"], "max_batch_size, ", "scheduler")
    st["block_size"] = given_or("block_size", era["tokens_per_block"], "tokens_per_block, ", "tokens_per_block")
    st["kv_cache_dtype"] = kv_setting
    val = {k: v.value for k, v in st.items()}
    dep = Deployment(weights=s.weights, kv_dtype=kvd, engine="paged", tp=s.tp, pp=s.pp,
                     max_num_batched_tokens=val["max_num_batched_tokens"], max_num_seqs=val["max_num_seqs"],
                     block_size=val["block_size"])
    check_parallelism(spec, dep)
    ctx = terms.Context(spec, gpu, dep, era, table, formats, "serve", s.enforce_eager,
                        weight_bytes_per_gpu(spec, formats, dep))
    per_token = rank_kv_bytes_per_token(spec, dep)
    if per_token <= 0:
        raise PlannerInputError("model", "has no attention layer: TensorRT-LLM sizes no paged KV cache for it",
                                "plan it with the transformers engine")
    bs = val["block_size"]
    tmp_tokens = trtllm_estimation_tokens(val["max_num_batched_tokens"], val["max_model_len"], bs)
    if era["estimation_tokens"] == "requests_or_batch_blocks":
        tmp_tokens = max(tmp_tokens, val["max_num_seqs"] * bs)
    returned = bool(era["estimation_cache_returned"])
    ts = tuple(Term(t.name, t.bytes, True, t.source) for t in terms.trtllm_terms(ctx)) + (
        Term("estimation_kv_cache", tmp_tokens * per_token, not returned,
             f"the temporary KV cache of the dummy pass: {tmp_tokens:,} tokens x {per_token:,.0f} B "
             f"({era.rule('estimation_tokens').value}: {era.rule('estimation_tokens').source}); "
             + ("in the peak and added back (not subtracted)" if returned else "left inside the peak (subtracted)")),)
    total = gpu.total_memory_bytes
    f = val["free_gpu_memory_fraction"]
    free = total - sum(t.bytes for t in ts if t.counted)
    budget = free * f
    blocks = trtllm_pool_blocks(budget, per_token, bs, era)
    notes = [note] if note else []
    if not era.get("source_read", True):
        notes.append(f"{era.label}: the start-up rule of these releases was not read in their source (the planner "
                     "applies 0.20's formula without returning the estimation cache); the pool may differ")
    if spec.sliding_window and any(k == "sliding" for k in spec.layer_kinds):
        notes.append("sliding-window layers: TensorRT-LLM's variable-window manager splits the same budget "
                     "between the windows; the token count here is the pool as if every layer kept every token")
    mml = val["max_model_len"]
    rules = tuple((k, f"{r.value} -- {r.source}") for k, r in era.rules)
    return StartupMemory("trtllm", str(version), era.label, gpu.id, total, free, ts,
                         budget, per_token, bs, blocks, blocks * bs, mml, blocks * bs / mml if mml else 0.0,
                         tuple(st.items()), rules, tuple(notes))


def _trtllm_refuse(spec: ModelSpec, s: EngineSettings) -> None:
    """What TensorRT-LLM's start-up rule here does not cover, or another engine's setting, named."""
    if any(k in (LINEAR, MAMBA) for k in spec.layer_kinds):
        raise PlannerInputError("engine", "TensorRT-LLM's hybrid cache (MambaHybridCacheManager: the recurrent "
                                "state of max_batch_size sequences, allocated before its memory profiling) is not "
                                "modelled", "plan this model with --engine vllm or sglang")
    for name, what in (("gpu_memory_utilization", "vLLM's --gpu-memory-utilization"),
                       ("mem_fraction_static", "SGLang's --mem-fraction-static"),
                       ("kv_cache_memory_bytes", "vLLM's --kv-cache-memory"),
                       ("num_gpu_blocks_override", "vLLM's --num-gpu-blocks-override"),
                       ("max_total_tokens", "SGLang's --max-total-tokens")):
        if getattr(s, name) is not None:
            raise PlannerInputError(name, f"is {what}; TensorRT-LLM has no such setting",
                                    "give --free-gpu-memory-fraction (kv_cache_config.free_gpu_memory_fraction)")
    if s.enforce_eager:
        raise PlannerInputError("enforce_eager", "is vLLM's --enforce-eager; TensorRT-LLM's CUDA graphs are set in "
                                "cuda_graph_config", "drop --enforce-eager")
    if s.entry_point != "serve":
        raise PlannerInputError("entry_point", f"{s.entry_point!r} is vLLM's offline LLM class",
                                "leave it to serve for TensorRT-LLM")
    if s.block_size is not None and s.block_size & (s.block_size - 1):
        raise PlannerInputError("block_size", f"TensorRT-LLM's tokens_per_block must be a power of 2, got {s.block_size}",
                                "e.g. 32 (its default) or 64")
    if s.max_model_len is not None and s.max_model_len < 2:
        raise PlannerInputError("max_model_len", f"must be at least 2 tokens for TensorRT-LLM, got {s.max_model_len}",
                                "e.g. 8192")
    if not is_auto(s.kv_cache_dtype) and kvmod.kv_dtype(s.kv_cache_dtype).bits not in (8, 16):
        raise PlannerInputError("kv_cache_dtype", f"TensorRT-LLM's KV cache is fp8 or 16-bit, got {s.kv_cache_dtype!r}",
                                "choose fp8, bf16 or fp16")


def trtllm_pool_blocks(budget: float, per_token: float, tokens_per_block: int, era: Era) -> int:
    """max_tokens = budget // bytes a token (``_cal_max_tokens``), as whole blocks: rounded up on the token path
    (resource_manager.calculate_max_num_blocks), down where the pool is sized in bytes (``pool_rounding``)."""
    tokens = max(int(budget // per_token), 0) if per_token > 0 else 0
    if era.get("pool_rounding", "up") == "down":
        return tokens // tokens_per_block
    return -(-tokens // tokens_per_block)


def rank_kv_bytes_per_token(spec: ModelSpec, dep: Deployment) -> float:
    """KV bytes a token of every attention layer on one rank of the fullest pipeline stage (planner/kv.py's paged
    layout): SGLang's cell, TensorRT-LLM's KvCacheCreator._get_cache_size_per_token (MLA: kv_lora_rank +
    qk_rope_head_dim, once; else head_dim x KV heads / TP, for K and V, x the KV dtype's bytes). Above TP = KV
    heads the planner keeps one whole KV head a rank (what the ranks hold); TensorRT-LLM's estimate divides the
    heads (head_dim x KV heads // TP), so it counts fewer bytes a token there and logs more tokens than its ranks
    hold."""
    groups = kvmod.layer_groups(spec, dep.kv_dtype, "paged", dep.tp)
    frac = max(-(-spec.num_layers // dep.pp), 1) / spec.num_layers
    return sum(g.layers * g.bytes_per_token for g in groups) * frac


def trtllm_estimation_tokens(max_num_tokens: int, max_seq_len: int, tokens_per_block: int) -> int:
    """The tokens of the temporary KV cache the estimation runs on (_get_token_num_for_estimation): dummy
    requests of min(max_num_tokens, max_seq_len - 1) tokens filling max_num_tokens, each with 2 more
    (the generated token and the overlap scheduler's), each rounded up to whole blocks."""
    per = max(1, min(max_num_tokens, max_seq_len - 1))
    full, rest = divmod(max_num_tokens, per)
    blocks = full * -(-(per + 2) // tokens_per_block) + (-(-(rest + 2) // tokens_per_block) if rest else 0)
    return blocks * tokens_per_block


STARTUP = {"vllm": vllm_startup, "sglang": sglang_startup, "trtllm": trtllm_startup}  # engine -> its start-up rules
# engine -> the EngineSettings field of its memory fraction (a Deployment's gpu_memory_utilization)
FRACTION_SETTING = {"vllm": "gpu_memory_utilization", "sglang": "mem_fraction_static",
                    "trtllm": "free_gpu_memory_fraction"}
