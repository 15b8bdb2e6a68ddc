"""The requests the CLI and the dashboard make, as plain functions returning plain dicts.

Both front ends call these and nothing below them, so they cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import kv as kvmod
from . import profiles
from .errors import PlannerInputError, require_positive_int
from .formats import bits_per_weight, format_from_quantization_config, tensor_bytes
from .memory import MAX_BATCH, MAX_CONTEXT, Deployment, MemoryModel, activation_peak_bytes
from .params import param_breakdown, params_active, params_total
from .serving import Plan
from .spec import ModelSpec
from .timing import Efficiency, KernelFactor, build_timing

if TYPE_CHECKING:
    from .request import PlanRequest
    from .result import PlanResult


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else profiles.load_model(model)


def default_weights(spec: ModelSpec) -> str:
    """The checkpoint's own format: its quantization_config, else bf16."""
    return format_from_quantization_config(spec, profiles.formats()) or "bf16"


def own_weights(spec: ModelSpec) -> str | None:
    """``default_weights``, or None where the quantization_config is one the planner does not model (its
    refusal says to plan a format picked explicitly, which is then not the checkpoint's own)."""
    try:
        return default_weights(spec)
    except PlannerInputError:
        return None


def inspect_model(model: str | ModelSpec, kv_dtype: str = "bf16", engine: str = "transformers",
                  context: int = 4096, batch: int = 1, weights: str | None = None) -> dict[str, Any]:
    spec = resolve_model(model)
    context = require_positive_int("context", context, maximum=MAX_CONTEXT)
    batch = require_positive_int("batch", batch, maximum=MAX_BATCH)
    groups = kvmod.layer_groups(spec, kv_dtype, engine)
    fmt = weights or default_weights(spec)
    table = profiles.formats()
    wdf = tensor_bytes(spec, table, fmt)
    return {
        "model": spec.name, "model_type": spec.model_type, "attention": spec.attention_label,
        "layers": spec.num_layers, "hidden_size": spec.hidden_size, "num_heads": spec.num_heads,
        "num_kv_heads": spec.num_kv_heads, "head_dim": spec.head_dim, "layer_kinds": spec.kind_counts(),
        "sliding_window": spec.sliding_window or None,
        "num_experts": spec.num_experts, "experts_per_token": spec.experts_per_token,
        "params_total": params_total(spec), "params_active": params_active(spec),
        "params_breakdown": param_breakdown(spec),
        "weights_format": table.get(fmt).id, "weight_bytes": float(wdf["bytes"].sum()),
        "weight_bytes_source": wdf.attrs["weight_bytes_source"],
        "checkpoint": _checkpoint_report(spec, wdf),
        "bits_per_weight": bits_per_weight(spec, table, fmt),
        "weight_bytes_breakdown": {k: float(v) for k, v in wdf.groupby("component")["bytes"].sum().items()},
        "kv_dtype": kvmod.kv_dtype(kv_dtype).name, "engine": engine,
        "kv_bytes_per_token": kvmod.kv_bytes_per_token(groups),
        "kv_state_bytes_per_sequence": kvmod.kv_state_bytes_per_seq(groups),
        "context": context, "batch": batch,
        "kv_cache_bytes": float(kvmod.kv_cache_bytes(groups, batch, context, engine)),
        "kv_groups": kvmod.describe(groups),
        "assumptions": list(spec.assumptions),
    }


def _weight_bytes_source(spec: ModelSpec, weights: str) -> str:
    """Where a plan's weight bytes come from: the format's formula, or the checkpoint's safetensors headers."""
    return tensor_bytes(spec, profiles.formats(), weights).attrs["weight_bytes_source"]


def _checkpoint_report(spec: ModelSpec, wdf) -> dict[str, Any] | None:
    """The checkpoint's real bytes by dtype next to the formula's (planner/checkpoint.py), when known."""
    from .checkpoint import report

    return report(spec, wdf.attrs["formula_bytes"], wdf.attrs["weight_bytes_source"].startswith("checkpoint"))


def memory_model(model: str | ModelSpec, gpu: str, dep: Deployment) -> MemoryModel:
    """The memory model of ``dep`` as its engine runs it (the same one ``build_plan`` uses): the engine's defaults
    for what ``dep`` leaves open and, for a serving engine, the KV pool it allocates at start-up, so that ``fit``,
    the dashboard's tables and ``plan`` agree on what fits."""
    return _served_memory(resolve_model(model), profiles.gpu(gpu), dep)[1]


def _served_memory(spec: ModelSpec, g, dep: Deployment):
    """``dep`` resolved against its engine (planner/deploy.py) and its memory model, with the engine's start-up
    pool (``MemoryModel.engine_kv_budget_bytes``) where it has one."""
    from dataclasses import replace

    from .deploy import resolve
    r = resolve(spec, g, dep)
    mm = MemoryModel.build(spec, g, r.dep, profiles.formats(), profiles.runtime())
    if r.startup is not None:
        mm = replace(mm, engine_kv_budget_bytes=r.startup.kv_budget_bytes)
    return r, mm


def capacity(model: str | ModelSpec, gpu: str, tp: int = 1, pp: int = 1, weights: str | None = None,
             kv_dtype: str = "auto", gpu_memory_utilization: float | None = None, max_model_len: int | None = None,
             engine: str = "vllm", engine_version: str | None = None, entry_point: str = "serve",
             max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
             block_size: int | None = None, enforce_eager: bool = False,
             mem_fraction_static: float | None = None,
             free_gpu_memory_fraction: float | None = None) -> dict[str, Any]:
    """The KV-cache pool a serving engine allocates at start-up, line by line (planner/startup.py).

    ``engine`` is vllm, sglang or trtllm (TensorRT-LLM's PyTorch backend); ``engine_version`` defaults to the newest release in
    profiles/engines/<engine>.json, whose rules (each with the engine's file and line) decide the
    budget, the scheduler defaults and how the pool is logged. Settings left None take that
    version's defaults; the result says which were assumed. The KV pool carries the spread observed
    on the committed start-up logs of that version group (``band``), and a calibration entry saved
    by ``engine-log --save`` for the same GPU, engine version and TP corrects the budget.
    """
    from . import logcheck
    from .startup import STARTUP, EngineSettings

    spec = resolve_model(model)
    if engine == "paged":
        engine = "vllm"
    if engine not in STARTUP:
        raise PlannerInputError("engine", f"no start-up model for {engine!r}", "choose vllm, sglang or trtllm")
    s = EngineSettings(engine=engine, version=engine_version, entry_point=entry_point, tp=tp, pp=pp,
                       weights=weights or default_weights(spec), kv_cache_dtype=kv_dtype or "auto",
                       gpu_memory_utilization=gpu_memory_utilization, mem_fraction_static=mem_fraction_static,
                       free_gpu_memory_fraction=free_gpu_memory_fraction, max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                       max_num_batched_tokens=max_num_batched_tokens, block_size=block_size, enforce_eager=enforce_eager)
    g = profiles.gpu(gpu)
    m = STARTUP[engine](spec, g, s, profiles.engine_table(engine), profiles.formats())
    limits = engine in logcheck.SAME_LIMITS
    trt = {"free_gpu_memory_fraction": m.setting("free_gpu_memory_fraction"), "weights": s.weights} \
        if engine == "trtllm" else None
    cal = logcheck.matching_calibration(engine, m.era, g.id, tp, pp, spec.name,
                                        m.setting("max_num_batched_tokens") if limits else None,
                                        m.setting("max_num_seqs") if limits else None, trt,
                                        trt["free_gpu_memory_fraction"] if trt else 1.0)
    if cal:
        m = _calibrated(spec, s, m, cal[0], engine)
    return _capacity_dict(spec, s, m, cal[1] if cal else None)


def auto_kv_dtype(model: str | ModelSpec, engine: str = "vllm", engine_version: str | None = None,
                  weights: str | None = None) -> tuple[str, str]:
    """The KV cache dtype ``engine`` (vllm, sglang, trtllm) at ``engine_version`` (default: its newest) allocates for
    this model served with ``weights`` (default: the checkpoint's own, as a plan) under "auto", and why: the dtype it
    is served in, or the checkpoint's fp8 KV scheme where that release reads it (planner/startup.py ``_kv_dtype``;
    what ``capacity`` and a plan built with "auto" take). ``engine`` "transformers" (HF generate, no engine rule):
    the 16-bit cache planner/kv.py counts for "auto"."""
    from .startup import STARTUP
    from .startup import auto_kv_dtype as engine_auto
    if engine == "transformers":
        return kvmod.kv_dtype("auto").name, "auto: HF generate's cache in the model's 16-bit dtype (planner/kv.py)"
    if engine not in STARTUP:
        raise PlannerInputError("engine", f"no start-up model for {engine!r}", "choose vllm, sglang or trtllm")
    spec = resolve_model(model)
    k = engine_auto(spec, profiles.engine_table(engine), engine_version, weights or default_weights(spec))
    return k.value, k.source


def _calibrated(spec, s, m, offset_bytes: float, engine: str):
    """The same start-up with the budget moved by a saved log's offset (pool recomputed)."""
    from dataclasses import replace

    from .startup import kv_pool
    budget = max(m.kv_budget_bytes + offset_bytes, 0.0)
    if engine == "trtllm":  # max_tokens = budget // bytes a token, in whole blocks (startup.trtllm_startup)
        from .startup import trtllm_pool_blocks
        blocks = trtllm_pool_blocks(budget, m.bytes_per_token, m.block_size,
                                    profiles.engine_table("trtllm").resolve(m.version)[0])
        return replace(m, kv_budget_bytes=budget, kv_tokens=blocks * m.block_size, num_blocks=blocks,
                       max_concurrency=blocks * m.block_size / m.max_model_len if m.max_model_len else 0.0)
    if engine == "sglang":
        tokens = int(budget // m.bytes_per_token) if m.bytes_per_token else 0
        return replace(m, kv_budget_bytes=budget, kv_tokens=tokens, num_blocks=tokens,
                       max_concurrency=tokens / m.max_model_len)
    era, _, _ = profiles.engine_table("vllm").resolve(m.version)
    dep = Deployment(weights=s.weights, kv_dtype=m.setting("kv_cache_dtype"), engine="paged", tp=s.tp, pp=s.pp,
                     block_size=m.setting("block_size"), max_num_batched_tokens=m.setting("max_num_batched_tokens"),
                     max_num_seqs=m.setting("max_num_seqs"))
    pool = kv_pool(spec, dep, era, budget, m.max_model_len)
    return replace(m, kv_budget_bytes=budget, num_blocks=pool.num_blocks, kv_tokens=pool.logged_tokens,
                   max_concurrency=pool.concurrency)


def _capacity_dict(spec: ModelSpec, s, m, calibration: str | None) -> dict[str, Any]:
    from . import logcheck

    t = {x.name: x for x in m.terms}
    counted = [x for x in m.terms if x.counted]
    non_torch = sum(x.bytes for x in counted if x.name in logcheck.NON_TORCH)
    band = logcheck.band(m.engine, m.version, s.tp)
    out: dict[str, Any] = {
        "model": spec.name, "gpu": m.gpu, "engine": m.engine, "engine_version": m.version, "engine_rules": m.era,
        "entry_point": s.entry_point, "tp": s.tp, "pp": s.pp, "weights_format": s.weights,
        "kv_dtype": m.setting("kv_cache_dtype"), "max_model_len": m.max_model_len,
        "settings": {k: {"value": v.value, "source": v.source} for k, v in m.settings},
        "total_memory_bytes_per_gpu": m.total_bytes, "requested_memory_bytes_per_gpu": m.requested_bytes,
        "weight_bytes_per_gpu": t["weights"].bytes,
        "activation_peak_bytes_per_gpu": t["activation_peak"].bytes if "activation_peak" in t else 0.0,
        "non_torch_bytes_per_gpu": non_torch,
        "cuda_graph_bytes_per_gpu": t["cuda_graph_estimate"].bytes if "cuda_graph_estimate" in t and
        t["cuda_graph_estimate"].counted else 0.0,
        "kv_budget_bytes_per_gpu": max(m.kv_budget_bytes, 0.0), "kv_bytes_per_token_per_gpu": m.bytes_per_token,
        "block_size": m.block_size, "kv_blocks": m.num_blocks, "kv_cache_tokens": m.kv_tokens,
        "max_concurrency": m.max_concurrency,
        "terms": [{"name": x.name, "bytes": x.bytes, "counted": x.counted, "source": x.source} for x in m.terms],
        "band": band, "calibration": calibration or "none: no saved start-up log for this GPU, engine version and TP",
        "notes": list(m.notes), "fits": bool(m.fits),
    }
    out["kv_cache_tokens_low"] = int(m.kv_tokens * (1 + band["low_pct"] / 100)) if band["n"] else None
    out["kv_cache_tokens_high"] = int(m.kv_tokens * (1 + band["high_pct"] / 100)) if band["n"] else None
    if m.kv_budget_bytes <= 0:
        need = sum(x.bytes for x in counted) / 2**30
        out["reason"] = (  # TensorRT-LLM's fraction is of what its peak leaves: raising it makes no room
            f"weights + activations + memory outside torch peak at {need:.2f} GiB of the {m.total_bytes / 2**30:.2f} "
            "GiB device: no room for any KV cache (add GPUs (tp), quantize the weights, or lower max_num_tokens)"
            if m.engine == "trtllm" else
            f"weights + activations + overhead need {need:.2f} GiB of the {m.requested_bytes / 2**30:.2f} GiB allowed: "
            "no room for any KV cache (raise gpu_memory_utilization, add GPUs (tp), or quantize the weights)")
    elif not m.fits:
        per_seq = m.bytes_per_token * m.max_model_len
        longest = int(m.kv_tokens // 1) if m.kv_tokens else 0
        out["reason"] = (f"one request of {m.max_model_len:,} tokens needs about {per_seq / 2**30:.2f} GiB of KV cache, "
                         f"{m.kv_budget_bytes / 2**30:.2f} GiB is left: the largest max_model_len that fits is about "
                         f"{longest:,}; lower max_model_len, add GPUs or use an fp8 KV cache")
    else:
        out["reason"] = ""
    return out


def fit(model: str | ModelSpec, gpu: str, batch: int, prompt: int, output: int = 0, **dep_kw) -> dict[str, Any]:
    """The memory plan of one deployment, with the largest batch and longest context that fit."""
    spec = resolve_model(model)
    batch = require_positive_int("batch", batch, maximum=MAX_BATCH)
    prompt = require_positive_int("prompt", prompt, maximum=MAX_CONTEXT)
    output = require_positive_int("output", output, maximum=MAX_CONTEXT, allow_zero=True)
    dep_kw.setdefault("weights", default_weights(spec))
    mm = memory_model(spec, gpu, Deployment(**dep_kw))
    plan = {k: v.item() if isinstance(v, np.ndarray) else v for k, v in mm.plan(batch, prompt, output).items()}
    plan["fits"] = bool(plan["fits"])
    plan["weight_bytes_source"] = _weight_bytes_source(spec, dep_kw["weights"])
    plan["max_batch"] = int(mm.max_batch(prompt, output))
    plan["max_context"] = int(mm.max_context(batch))
    if spec.max_position_embeddings and plan["max_context"] > spec.max_position_embeddings:
        plan["max_context"] = spec.max_position_embeddings
        plan["max_context_limited_by"] = "model (max_position_embeddings)"
    else:
        plan["max_context_limited_by"] = "memory"
    pool = mm.engine_kv_budget_bytes
    if pool is not None:
        plan["kv_budget_bytes"] = max(pool, 0.0)  # the engine's start-up pool (``capacity``)
    short = None if plan["fits"] else mm.pool_shortfall(plan["total_bytes"])
    if short:
        plan["reason"] = (f"the KV cache needs {plan['kv_cache_bytes'] / 2**30:.2f} GiB per GPU, {short} (see "
                          f"`capacity`); largest batch that fits at this length: {plan['max_batch']}")
    elif not plan["fits"]:
        short = plan["total_bytes"] - plan["capacity_bytes"]
        plan["reason"] = (f"needs {plan['total_bytes'] / 2**30:.2f} GiB per GPU, {plan['capacity_bytes'] / 2**30:.2f} GiB "
                          f"available ({short / 2**30:.2f} GiB short); largest batch that fits at this length: "
                          f"{plan['max_batch']}")
    else:
        plan["reason"] = ""
    return plan


def efficiency_for(gpu_id: str, engine: str) -> Efficiency:
    """The calibrated efficiencies of this GPU and engine if measured, else the sourced defaults
    (Efficiency.from_fit: the same rule validate.efficiency applies)."""
    return Efficiency.from_fit(profiles.efficiency_defaults(), profiles.load_calibrations().get(gpu_id, {}).get(engine))


def build_plan(model: str | ModelSpec, gpu: str, dep: Deployment, gpu_layers: int | None = None,
               eff: Efficiency | None = None) -> Plan:
    spec = resolve_model(model)
    g = profiles.gpu(gpu)
    table = profiles.formats()
    fmt = table.get(dep.weights)
    r, mm = _served_memory(spec, g, dep)
    dep = r.dep
    kf = profiles.kernel_family(fmt.family, fmt.id)
    kernel = KernelFactor(compute_factor=kf.get("compute_factor", 1.0), memory_factor=kf.get("memory_factor", 1.0),
                          dequant_bytes_per_weight=kf.get("dequant_bytes_per_weight", 0.0),
                          dequant_min_tokens=int(kf.get("dequant_min_tokens", 2)))
    eff = eff or efficiency_for(g.id, dep.engine)
    if r.scheduler is not None:  # the engine's fitted costs (planner/scheduler.py)
        eff = _engine_efficiency(eff, eff.step_overhead_s, r.scheduler)
    tm = build_timing(spec, g, dep, table, eff, kernel, gpu_layers=gpu_layers,
                      host_bandwidth_bytes_per_s=profiles.host_bandwidth_bytes_per_s())
    return Plan(mm, tm, eff.provenance, r.startup, r.scheduler)


def with_engine_costs(p: Plan, step_overhead_s: float, request_overhead_s: float,
                      eager_layer_overhead_s: float, eager_overlaps: bool | None = None,
                      prefill_token_layer_s: float | None = None, allreduce_spread: float | None = None,
                      return_gap_s: float | None = None, sequence_step_s: float | None = None) -> Plan:
    """The same plan with other engine fixed costs (planner/fit_e2e.py fits them this way)."""
    from dataclasses import replace

    if p.scheduler is None:
        return p
    old = p.scheduler
    overlaps = old.eager_overlaps if eager_overlaps is None else eager_overlaps
    prefill = old.prefill_token_layer_s if prefill_token_layer_s is None else prefill_token_layer_s
    allreduce = old.allreduce_spread if allreduce_spread is None else allreduce_spread
    gap = old.return_gap_s if return_gap_s is None else return_gap_s
    seq = old.sequence_step_s if sequence_step_s is None else sequence_step_s
    sched = replace(old, step_overhead_s=step_overhead_s, request_overhead_s=request_overhead_s,
                    eager_layer_overhead_s=eager_layer_overhead_s, eager_overlaps=overlaps,
                    prefill_token_layer_s=prefill, allreduce_spread=allreduce, return_gap_s=gap, sequence_step_s=seq)
    eff = p.timing.eff
    eff = _engine_efficiency(eff, eff.step_overhead_s - old.exposed_step_s, sched)
    return replace(p, scheduler=sched, timing=p.timing.with_efficiency(eff))


def _engine_efficiency(eff: Efficiency, base_step_s: float, sc) -> Efficiency:
    """``eff`` with the engine's fitted costs of scheduler profile ``sc``: its per-pass cost on top of
    ``base_step_s`` (the calibration's own; none with vLLM's async scheduling, ``exposed_step_s``), the per-eager-layer, prefill,
    all-reduce and per-sequence costs, and the
    largest captured CUDA graph (passes above it run eager)."""
    from dataclasses import replace

    return replace(eff, step_overhead_s=base_step_s + sc.exposed_step_s,
                   eager_layer_overhead_s=sc.eager_layer_overhead_s, eager_overlaps=sc.eager_overlaps,
                   prefill_token_layer_s=sc.prefill_token_layer_s, allreduce_spread=sc.allreduce_spread,
                   sequence_step_s=sc.sequence_step_s, graph_max_tokens=max(sc.graph_sizes, default=0))


def plan_request(req: PlanRequest) -> PlanResult:
    """One deployment at one operating point: memory, latency, throughput, cost, each figure with its
    source (planner/planning.py). The one call behind the CLI's ``plan``, the dashboard and ``plan``."""
    from .planning import plan_request as run

    return run(req)


def plan(model: str | ModelSpec, gpu: str, batch: int, prompt: int, output: int, gpus: int | None = None,
         simulate: bool = True, **dep_kw) -> dict[str, Any]:
    """``plan_request`` from primitives, as the dict this function has always returned (JSON-able).

    The latency headline (``ttft_s``, ``tpot_s``, ``e2e_latency_s``) is what a benchmark with
    ``batch`` clients would measure: the simulated means, with their percentiles (``ttft_p90_s`` ...)
    and ``latency_source`` saying how they were found. The mean-value figures stay beside them:
    ``ttft_lower_bound_s`` (one prompt, nothing queued, the batch's decodes sharing its passes), ``tpot_mean_value_s`` and
    ``e2e_mean_value_s``. With ``simulate`` False, or when the engine cannot hold one request, the
    headline is the mean-value figure and ``latency_source`` says so."""
    spec = resolve_model(model)
    batch = require_positive_int("batch", batch, maximum=MAX_BATCH)
    from .request import build

    req = build(spec, gpu, batch, prompt, output, gpus=gpus, simulate=simulate, **dep_kw)
    return plan_request(req).as_dict()


def gguf_offload(model: str | ModelSpec, gpu: str, weights: str = "Q4_K_M", context: int = 4096, batch: int = 1,
                 kv_dtype: str = "fp16") -> dict[str, Any]:
    """llama.cpp partial offload: how many layers fit on the GPU (``-ngl``), the rest in CPU RAM.

    llama.cpp keeps the token embedding table in host memory, puts each offloaded layer's weights
    and its KV cache on the GPU (offload_kqv), and the output head on the GPU once every layer
    is there. Layers are offloaded whole, from the first (llama.cpp's llm_load_tensors).
    """
    spec = resolve_model(model)
    context = require_positive_int("context", context, maximum=MAX_CONTEXT)
    batch = require_positive_int("batch", batch, maximum=MAX_BATCH)
    g = profiles.gpu(gpu)
    df = tensor_bytes(spec, profiles.formats(), weights)
    per_layer = df[df["layer"] >= 0].groupby("layer")["bytes"].sum().reindex(range(spec.num_layers), fill_value=0.0)
    head = float(df[(df["layer"] < 0) & ~df["role"].isin(["embed", "pos_embed"])]["bytes"].sum())
    if spec.tie_word_embeddings:
        head += float(df[df["role"] == "embed"]["bytes"].sum())  # tied: the table doubles as the output head
    embed = float(df[df["role"].isin(["embed", "pos_embed"])]["bytes"].sum())
    groups = kvmod.layer_groups(spec, kv_dtype, "transformers")
    kv_all = float(kvmod.kv_cache_bytes(groups, batch, context, "transformers"))
    kv_layer = kv_all / spec.num_layers
    rt = profiles.runtime()
    # llama.cpp's compute buffer ~ one forward's activations at n_batch=512 plus the logits
    compute = float(activation_peak_bytes(spec, Deployment(engine="transformers"), 1, min(context, 512), rt))
    room = g.total_memory_bytes - rt.cuda_context_bytes - compute
    cum = np.cumsum(per_layer.to_numpy() + kv_layer)
    n = int(np.searchsorted(cum, room, side="right"))
    all_fit = n == spec.num_layers and cum[-1] + head <= room
    gpu_bytes = float(cum[n - 1]) if n else 0.0
    if all_fit:
        gpu_bytes += head
    total_weights = float(df["bytes"].sum())
    return {"model": spec.name, "gpu": g.id, "weights_format": weights, "context": context, "batch": batch,
            "layers": spec.num_layers, "gpu_layers": n, "cpu_layers": spec.num_layers - n,
            "output_head_on_gpu": bool(all_fit), "gpu_bytes": gpu_bytes + rt.cuda_context_bytes + compute,
            "cpu_bytes": total_weights + kv_all - gpu_bytes,
            "embedding_bytes_on_cpu": embed, "weight_bytes_total": total_weights, "kv_bytes_total": kv_all,
            "gpu_capacity_bytes": g.total_memory_bytes, "unified_memory": g.unified_memory}


def gguf_offload_curve(model: str | ModelSpec, gpu: str, weights: str = "Q4_K_M", context: int = 4096,
                       kv_dtype: str = "fp16") -> tuple[dict[str, Any], pd.DataFrame]:
    """llama.cpp partial offload as a curve: ``gguf_offload``'s answer, and the batch-1 decode step
    (``TimingModel.decode_step``: layers left on the CPU read at host bandwidth) and tokens/s for
    0 to all layers on the GPU (about 40 points, the answer's among them)."""
    spec = resolve_model(model)
    best = gguf_offload(spec, gpu, weights=weights, context=context, kv_dtype=kv_dtype)
    dep = Deployment(weights=weights, kv_dtype=kv_dtype, engine="transformers")
    n_layers = spec.num_layers
    layers = sorted(set(range(0, n_layers + 1, max(1, n_layers // 40))) | {n_layers, best["gpu_layers"]})
    step_s = [float(np.asarray(build_plan(spec, gpu, dep, gpu_layers=n).timing.decode_step(1, context)["time_s"]))
              for n in layers]
    df = pd.DataFrame({"gpu_layers": layers, "decode_step_s": step_s})
    df["tokens_per_s"] = 1.0 / df["decode_step_s"]
    df["fits_on_gpu"] = df["gpu_layers"] <= best["gpu_layers"]
    return best, df


def kv_curve(model: str | ModelSpec, kv_dtype: str, engine: str, tp: int, batch: int, contexts) -> np.ndarray:
    """KV cache bytes per GPU at ``batch`` over ``contexts`` (planner/kv.py ``kv_cache_bytes``)."""
    groups = kvmod.layer_groups(resolve_model(model), kv_dtype, engine, tp)
    return np.asarray(kvmod.kv_cache_bytes(groups, batch, np.asarray(contexts, dtype=float), engine), dtype=float)
