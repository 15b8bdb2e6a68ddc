"""One deployment at one operating point: ``PlanRequest`` in, ``PlanResult`` out (``api.plan_request``).

The mean-value model (planner/serving.py ``evaluate``) gives memory, the roofline work, latency,
throughput and cost; the memory model the largest batch and longest context; the discrete-event
simulation (planner/traffic.py) the latency a benchmark with ``batch`` clients would measure,
whenever one request fits, and then the throughput and cost too (``serving.rates`` on its mean e2e).
Every figure's source goes into the result's ``provenance``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import api, profiles
from . import kv as kvmod
from .errors import PlannerInputError
from .request import PlanRequest
from .result import (
    CostFigures,
    LatencyFigures,
    MemoryFigures,
    PlanResult,
    ThroughputFigures,
    WorkFigures,
)
from .serving import Plan, evaluate, rates
from .spec import ModelSpec

SIM_PASS_BUDGET = 12_000  # prefill passes one plan's simulation may take (about 1-2 s on one core)
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM", "paged": "paged", "transformers":
                "transformers"}
MEAN_VALUE = "mean-value: one prompt alone for TTFT, every request decoding for TPOT"
# a plan whose experts' shape no carried table measured (gpt-oss-20b on vLLM's Marlin kernel borrows Kimi-K2's
# at EP 16: docs/validation.md); the shape itself is in the step times' source (OpCurves.source)
BORROWED_MOE = ("; the MoE experts' time is borrowed from another model's measured shape (its efficiency x this "
                "model's roofline), no kernel timing of this expert shape")


def plan_request(req: PlanRequest) -> PlanResult:
    spec = api.resolve_model(req.model)
    p = api.build_plan(spec, req.gpu, req.deployment)
    wl = req.workload
    m = {k: (v.item() if isinstance(v, np.ndarray) else v)
         for k, v in evaluate(p, wl.batch, wl.prompt_tokens, wl.output_tokens).items()}
    latency, source = _latency(req, spec, p, m)
    if latency.simulated:  # throughput and cost from the same simulated requests as the headline latency
        gap = p.scheduler.return_gap_s if p.scheduler is not None else 0.0
        m.update({k: float(v) for k, v in rates(p, wl.batch, wl.prompt_tokens, wl.output_tokens, latency.e2e_latency_s,
                                                latency.tpot_s, m["prefill_gpu_s"], gap).items()})
    memory = _memory(spec, p, m, wl.batch, wl.prompt_tokens, wl.output_tokens)
    fits = bool(m["fits"])
    short = None if fits else p.memory.pool_shortfall(m["memory_total_bytes_per_gpu"])
    if fits:
        reason = ""
    elif short:  # the total would fit, but not in the pool the engine allocates at start-up (MemoryModel.plan)
        reason = (f"the batch's KV cache needs {m['kv_cache_bytes_per_gpu'] / 2**30:.2f} GiB per GPU; {short} (see "
                  f"`capacity`); largest batch at this length: {memory.max_batch}")
    else:
        reason = (f"needs {m['memory_total_bytes_per_gpu'] / 2**30:.2f} GiB per GPU of "
                  f"{m['capacity_bytes_per_gpu'] / 2**30:.2f} GiB; largest batch at this length: {memory.max_batch}")
    rdep = p.memory.dep
    paged = req.deployment.engine == "paged"
    # "auto": the cache the engine allocates (deploy.resolve), HF generate's 16-bit one (api.auto_kv_dtype)
    kv = rdep.kv_dtype if paged else (api.auto_kv_dtype(spec, "transformers")[0] if req.deployment.kv_dtype == "auto"
                                      else req.deployment.kv_dtype)
    if kv != req.deployment.kv_dtype:
        req = replace(req, deployment=replace(req.deployment, kv_dtype=kv))
    return PlanResult(
        request=req, model=spec.name, gpu=p.memory.gpu.id, server=rdep.server if paged else None,
        server_version=rdep.server_version if paged else None, replicas=req.replicas,
        gpus_per_replica=int(m["gpus_per_replica"]), fits=fits, reason=reason, memory=memory, latency=latency,
        work=_work(p, m), throughput=_throughput(m, req.replicas), cost=_cost(m, req.replicas),
        latency_bands=_latency_bands(p, latency) if latency.simulated else {},
        provenance=_provenance(spec, p, req, source), notes=_start_notes(p))


def _start_notes(p: Plan) -> tuple[str, ...]:
    """vLLM refuses to start when one request of its max_model_len (default: the model's context) needs more KV
    cache than its pool (v0.11.0 vllm/v1/core/kv_cache_utils.py check_enough_kv_cache_memory raises "To serve at
    least one request with the models's max seq len ..."); the plan's figures then hold only with a shorter
    --max-model-len, which `command` sets (prompt + output)."""
    st = p.startup
    if st is None or st.engine != "vllm" or st.fits or st.kv_budget_bytes <= 0:
        return ()
    need = st.bytes_per_token * st.max_model_len
    return (f"vLLM {st.version} refuses to start at its default max_model_len of {st.max_model_len:,} tokens: one "
            f"such request needs {need / 2**30:.2f} GiB of KV cache and the pool is {st.kv_budget_bytes / 2**30:.2f} "
            f"GiB; start it with --max-model-len {st.kv_tokens:,} or less (the `command` for this plan sets prompt + "
            "output)",)


def _f(m: dict, *names: str) -> dict[str, float]:
    return {n: float(m[n]) for n in names}


def _memory(spec: ModelSpec, p: Plan, m: dict, batch: int, prompt: int, output: int) -> MemoryFigures:
    mm = p.memory
    ctx, limited = int(mm.max_context(batch)), "memory"
    if spec.max_position_embeddings and ctx > spec.max_position_embeddings:
        ctx, limited = spec.max_position_embeddings, "model (max_position_embeddings)"
    return MemoryFigures(
        **_f(m, "weights_bytes_per_gpu", "kv_cache_bytes_per_gpu", "activation_bytes_per_gpu", "overhead_bytes_per_gpu",
             "memory_total_bytes_per_gpu", "capacity_bytes_per_gpu", "headroom_bytes_per_gpu"),
        kv_budget_bytes_per_gpu=mm.kv_budget_bytes(), gpu_memory_bytes=float(mm.gpu.total_memory_bytes),
        gpu_memory_utilization=mm.dep.util if mm.dep.engine == "paged" else 1.0,
        capacity_bytes_per_replica=float(mm.capacity_bytes) * p.gpus_per_replica,
        max_batch=int(mm.max_batch(prompt, output)), max_batch_avg_occupancy=int(mm.max_batch(prompt, output // 2)),
        max_context_tokens=ctx, max_context_limited_by=limited, fits_avg_occupancy=bool(m["fits_avg_occupancy"]))


def _work(p: Plan, m: dict) -> WorkFigures:
    t = p.timing
    return WorkFigures(
        **_f(m, "prefill_flops", "prefill_bytes", "prefill_compute_s", "prefill_memory_s", "decode_step_flops",
             "decode_step_bytes", "decode_step_compute_s", "decode_step_memory_s", "decode_achieved_bytes_per_s",
             "decode_achieved_flops_per_s", "prefill_achieved_flops_per_s", "prefill_share_of_gpu_time"),
        prefill_bound=str(m["prefill_bound"]), decode_bound=str(m["decode_bound"]),
        peak_flops_per_s=float(t.peak_flops), compute_dtype=t.compute_dtype,
        bandwidth_bytes_per_s=float(p.memory.gpu.memory_bandwidth_bytes_per_s), eff_compute=t.eff.compute,
        eff_memory=t.eff.memory, compute_factor=t.kernel.compute_factor, memory_factor=t.kernel.memory_factor,
        step_overhead_s=t.eff.step_overhead_s, layer_overhead_s=t.eff.layer_overhead_s, layers_per_gpu=int(t.layers))


def _throughput(m: dict, replicas: int) -> ThroughputFigures:
    return ThroughputFigures(**_f(m, "tokens_per_s_per_user", "output_tokens_per_s", "output_tokens_per_s_per_gpu",
                                  "input_tokens_per_s", "requests_per_s"),
                             deployment_output_tokens_per_s=float(m["output_tokens_per_s"]) * replicas,
                             deployment_requests_per_s=float(m["requests_per_s"]) * replicas)


def _cost(m: dict, replicas: int) -> CostFigures:
    return CostFigures(**_f(m, "usd_per_hour", "gpu_hours_per_1m_output_tokens", "cost_usd_per_1m_output_tokens",
                            "cost_usd_per_1m_input_tokens", "cost_usd_per_1m_tokens"),
                       deployment_usd_per_hour=float(m["usd_per_hour"]) * replicas)


def _latency(req: PlanRequest, spec: ModelSpec, p: Plan, m: dict) -> tuple[LatencyFigures, str]:
    """The headline: simulated whenever the engine can hold one request (it queues the rest), else the
    mean-value figures, with the reason in the source."""
    wl = req.workload
    mean = {"ttft_lower_bound_s": m["ttft_s"], "tpot_mean_value_s": m["tpot_s"], "e2e_mean_value_s": m["e2e_latency_s"]}
    sim: dict = {}
    source = MEAN_VALUE
    ctx = spec.max_position_embeddings
    if req.simulate and ctx and wl.prompt_tokens + wl.output_tokens > ctx:
        source += (f" (not simulated: {wl.prompt_tokens + wl.output_tokens:,} tokens exceed {spec.name}'s context of "
                   f"{ctx:,}; an engine refuses such a request)")
    elif req.simulate and p.memory.kv_budget_bytes() > 0:
        try:
            sim = simulated_percentiles(p, wl.batch, wl.prompt_tokens, wl.output_tokens)
            source = sim.pop("latency_source")
        except PlannerInputError as e:  # not even one prompt's first chunk fits: say so, keep the mean-value
            source += f" (not simulated: {e.problem})"
    ops = p.timing.ops
    if ops is not None and ops.borrowed_moe:  # the headline rests on another model's expert timings: say so
        source += BORROWED_MOE
    head = {k: float(sim.get(k, m[k])) for k in ("ttft_s", "tpot_s", "e2e_latency_s")}
    rest = {k: v for k, v in sim.items() if k not in head}
    return LatencyFigures(**head, itl_s=float(m["itl_s"]), prefill_interference_s=float(m["prefill_interference_s"]),
                          **{k: float(v) for k, v in mean.items()}, **rest), source


# the headline's lengths: within 10 % of the stated ones (simulate.draw_lengths "spread")
HEADLINE_LENGTHS = "spread"


def simulated_percentiles(p: Plan, batch: int, prompt: int, output: int) -> dict[str, float]:
    """TTFT / TPOT / e2e with ``batch`` clients in flight, as a serving benchmark measures them (a
    closed loop started together, every request counted: planner/traffic.py; lengths drawn within
    +-10 % of the stated ones, the spread of the benchmark the latency bands are validated on:
    simulate.draw_lengths "spread"), served by the plan's engine scheduler and start-up KV pool. What the single-prompt figure leaves out, waiting for the
    passes in progress and sharing them with other prompts, is in these."""
    from .traffic import Traffic, serve

    # what the simulation costs grows with requests x passes per prompt: keep it under a second or so
    per_prompt = -(-prompt // max(p.memory.dep.mnbt, 1))
    n = Traffic(prompt, output, concurrency=batch, distribution=HEADLINE_LENGTHS).n_requests()
    if n * per_prompt > SIM_PASS_BUDGET:
        n = max(batch, SIM_PASS_BUDGET // per_prompt)
        if n * per_prompt > SIM_PASS_BUDGET or n < 2 * batch:
            raise PlannerInputError("batch", f"{batch:,} clients of {prompt:,}-token prompts are too many to simulate",
                                    "the mean-value figures stand; lower the batch or the prompt to simulate")
    t = Traffic(prompt, output, concurrency=batch, requests=n, distribution=HEADLINE_LENGTHS)
    r = serve(p, t)
    out = {f"{m}_p{q}_s": r.percentile(m, q) for m in ("ttft", "tpot", "e2e") for q in (50, 90, 99)}
    mean = {m: float(np.mean(getattr(r, f"{m}_s"))) if r.completed else float("inf") for m in ("ttft", "tpot", "e2e")}
    source = (f"simulated: {batch} client{'s' if batch != 1 else ''} in a closed loop, {t.n_requests():,} requests of "
              f"{prompt:,} + {output:,} tokens (each within 10 %), all measured; {engine_label(p)} scheduler")
    if mean["ttft"] > out["ttft_p90_s"]:
        # a mean above its own p90 reads like a bug: it is the first wave, which a benchmark's mean counts too
        source += ("; the mean TTFT is above its p90: the clients' first prompts, sent together, queue behind each "
                   "other (a benchmark's mean counts them too)")
    out.update(ttft_s=mean["ttft"], tpot_s=mean["tpot"], e2e_latency_s=mean["e2e"], sim_preemptions=int(r.preemptions),
               sim_requests=int(r.completed), latency_source=source)
    return out


def engine_label(p: Plan, scheduling: bool = True) -> str:
    """The engine and release a plan's latency was simulated with; a release newer than the engine table knows
    says whose rules it was run with (SchedulerProfile.rules_of: EngineTable.resolve applies the newest's), and
    (``scheduling``) a vLLM scheduler without async scheduling (before 0.14.0, or turned off) what each pass
    waits for it."""
    s = p.scheduler
    if s is None:
        return p.memory.dep.engine
    name = f"{ENGINE_NAMES.get(s.engine, s.engine)} {s.version}"
    if s.rules_of:
        name = f"{name} (run with {s.rules_of}'s rules, the newest the engine table knows)"
    if scheduling and s.engine == "vllm" and not s.async_scheduling:  # every pass waits for it
        name = f"{name} (synchronous scheduling, {s.exposed_step_s * 1e3:.2f} ms per pass)"
    return name


def _latency_bands(p: Plan, lat: LatencyFigures) -> dict[str, dict]:
    """Where a benchmark's mean would land: the headline times the engine's measured spread
    (profiles/engines/<engine>.json ``latency_bands``, docs/validation.md)."""
    if p.scheduler is None:
        return {}
    bands = profiles.latency_bands(p.scheduler.engine)
    keys = {"ttft": lat.ttft_s, "tpot": lat.tpot_s, "e2e": lat.e2e_latency_s}
    out = {}
    for metric, b in bands.items():
        if metric in keys and np.isfinite(keys[metric]):
            # what the band does not cover: a GPU without runs, a plan timed on the roofline ("" when neither)
            caveat = "; ".join(([] if p.memory.gpu.id in b.get("gpus", []) else
                                [f"none on {p.memory.gpu.id}, so a wider spread is possible"])
                               + ([] if p.timing.ops is not None else
                                  ["this plan is timed on the roofline, not on the measured operator tables those runs "
                                   "were predicted with: published runs timed so landed mostly slower than predicted "
                                   "(docs/validation.md, \"Runs no fit has seen\")"]))
            out[metric] = {"low_s": keys[metric] * b["low_ratio"], "high_s": keys[metric] * b["high_ratio"],
                           "n": int(b["n"]), "coverage": _percentiles(b), "caveat": caveat,
                           "group": f"{ENGINE_NAMES.get(p.scheduler.engine, p.scheduler.engine)}, published runs "
                                    f"on {', '.join(b.get('gpus', []))}" + (f"; {caveat}" if caveat else "")}
    return out


def _percentiles(band: dict) -> str:
    """The band's percentile range as the engine table states it (fit_e2e.band_tail chose it), e.g.
    "3rd-97th percentile", "2.5th-97.5th percentile"."""
    lo, hi = band.get("percentiles", (5, 95))
    return f"{_ordinal(lo)}-{_ordinal(hi)} percentile"


def _ordinal(q: float) -> str:
    """3 -> 3rd, 96 -> 96th, 2.5 -> 2.5th (a whole number takes its English suffix)."""
    if q != int(q):
        return f"{q:g}th"
    n = int(q)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _kv_source(p: Plan) -> str:
    """Why the plan's KV dtype is the one its engine allocates (startup._kv_dtype), "" when it was given as is."""
    if p.startup is None:
        return ""
    setting = dict(p.startup.settings).get("kv_cache_dtype")
    return "" if setting is None or setting.source == "given" else setting.source


def _provenance(spec: ModelSpec, p: Plan, req: PlanRequest, latency_source: str) -> dict[str, str]:
    g, d = p.memory.gpu, p.memory.dep
    src = dict(g.sources)
    start = (f"{engine_label(p, scheduling=False)} start-up rules, profiles/engines/{p.startup.engine}.json era {p.startup.era} "
             "(planner/startup.py)") if p.startup is not None else None
    return {
        "memory": "planner/memory.py: weights (TP x PP split) + KV cache + activation peak + overhead, per GPU",
        "weights_bytes_per_gpu": api._weight_bytes_source(spec, req.deployment.weights),
        "kv_cache_bytes_per_gpu": f"planner/kv.py: {d.engine} layout, {kvmod.kv_dtype(d.kv_dtype).source}"
                                  + (f"; {d.kv_dtype}: {kv_why}" if (kv_why := _kv_source(p)) else ""),
        "kv_budget_bytes_per_gpu": start or "MemoryModel.kv_budget_bytes: capacity - weights - one chunk's activation "
                                            "peak - overhead",
        "capacity_bytes_per_gpu": (f"{g.memory_source}: the whole device (TensorRT-LLM's free_gpu_memory_fraction "
                                   "applies to what its profiling pass leaves free)" if d.server == "trtllm" and
                                   d.engine == "paged" else
                                   f"{g.memory_source} x utilization {d.util if d.engine == 'paged' else 1.0}"),
        "gpu_memory_bytes": g.memory_source,
        "latency": latency_source,
        "ttft_lower_bound_s": f"{MEAN_VALUE}; step times: {p.timing.source}",
        "tpot_mean_value_s": f"{MEAN_VALUE}; step times: {p.timing.source}",
        "e2e_mean_value_s": f"{MEAN_VALUE}; step times: {p.timing.source}",
        "work": f"planner/timing.py: {p.timing.source}",
        "peak_flops_per_s": src.get(f"peak_flops.{p.timing.compute_dtype}", "GPU profile"),
        "bandwidth_bytes_per_s": src.get("memory_bandwidth_bytes_per_s", "GPU profile"),
        "efficiencies": p.provenance,
        "eff_compute": f"{p.provenance} efficiency (profiles/calibration or the sourced defaults)",
        "eff_memory": f"{p.provenance} efficiency (profiles/calibration or the sourced defaults)",
        "throughput": ("Little's law on the simulated requests: batch / (mean e2e + the engine's return gap) per "
                       "replica (planner/serving.py rates)" if latency_source.startswith("simulated") else
                       "Little's law on the mean-value model: batch / e2e per replica (planner/serving.py rates)"),
        "cost": f"GPU price x GPUs / tokens per hour; price: {src.get('price_usd_per_hour', 'none in the GPU profile')}",
        "latency_bands": f"profiles/engines/{p.scheduler.engine}.json latency_bands" if p.scheduler else "none",
    }
