"""Cached calls into planner.api: a single plan keyed by its PlanRequest (``result``), the rest by
primitives (model name + uploaded config text).

Each function is pure: same arguments, same answer, so st.cache_data may keep it. An input error
(PlannerInputError) is raised, not cached, and the page shows it. Nothing here computes a figure:
every number comes from planner.api (the pages render it).
"""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from planner import api, configread, profiles, slo, sweep, validate, whatif
from planner.engines import Version
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.request import PlanRequest, Workload
from planner.result import PlanResult
from planner.spec import ModelSpec

log = logging.getLogger("dashboard")
MAX_UPLOAD_BYTES = profiles.MAX_CONFIG_BYTES
CACHE = {"show_spinner": False, "max_entries": 2048}
CAPACITY_SIMULATE_TOP = 1     # the capacity page confirms the cheapest plan by simulation, as the CLI does
CAPACITY_SIM_REQUESTS = 1000  # requests per simulation (the CLI's default)


def _plain(d: Any) -> Any:
    """numpy scalars to Python numbers so that results pickle small and print cleanly."""
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(d, np.ndarray):
        return d.item() if d.ndim == 0 else d.tolist()
    if isinstance(d, np.generic):
        return d.item()
    return d


def spec(model: str, text: str = "") -> ModelSpec:
    """The bundled model ``model``, or the uploaded config ``text`` (parsed as JSON only)."""
    if text:
        return _parse_upload(text, model)
    return profiles.load_model(model)


@st.cache_resource(show_spinner=False, max_entries=32)
def _parse_upload(text: str, name: str) -> ModelSpec:
    return ModelSpec.from_json_text(text, name=name)


def upload_name(filename: str, cfg) -> str:
    """The model's name for an upload: the file's stem (``name.json``), else the config's
    ``_name_or_path`` (profiles.model_name), in the characters profiles.clean_name keeps."""
    base = PurePath(str(filename).replace("\\", "/")).name or "config.json"
    name = profiles.model_name(base, cfg if isinstance(cfg, dict) else None, on_disk=False)
    return f"{'uploaded' if name == 'config' else name} (uploaded)"


def check_upload(data: bytes, filename: str) -> tuple[str, str]:
    """(name, text) of an uploaded config.json, or a PlannerInputError naming the problem: the checks
    of the CLI's reader (configread: size, UTF-8, depth, JSON; spec: every value)."""
    cfg = configread.loads(data, "config.json", MAX_UPLOAD_BYTES)
    text = bytes(data).decode("utf-8")
    s = _parse_upload(text, upload_name(filename, cfg))
    api.inspect_model(s)  # the parameter inventory and cache groups must build too
    return s.name, text


def deployment(weights: str, kv_dtype: str, engine: str, tp: int, pp: int = 1, server: str = "vllm") -> Deployment:
    return Deployment(weights=weights, kv_dtype=kv_dtype, engine=engine, tp=tp, pp=pp, server=server)


@st.cache_data(**CACHE)
def inspect(model: str, text: str, weights: str, kv_dtype: str, engine: str, context: int, batch: int) -> dict:
    return _plain(api.inspect_model(spec(model, text), kv_dtype=kv_dtype, engine=engine, context=context,
                                    batch=batch, weights=weights))


def kv_of(model: str, text: str, kv_dtype: str, engine: str, server: str = "vllm", weights: str | None = None) -> str:
    """The KV dtype the pages compute with: the sidebar's, its "auto" being the cache the serving engine allocates
    for a paged layout, HF generate's otherwise (api.auto_kv_dtype, the rule the plans take)."""
    if kv_dtype != "auto":
        return kv_dtype
    return api.auto_kv_dtype(spec(model, text), server if engine == "paged" else "transformers", weights=weights)[0]


def request(model: str, text: str, gpu: str, tp: int, weights: str, kv_dtype: str, engine: str, batch: int,
            prompt: int, output: int, gpus: int | None = None, simulate: bool = True, pp: int = 1,
            server: str = "vllm") -> PlanRequest:
    """The PlanRequest of these choices: an uploaded config travels as its parsed ModelSpec."""
    return PlanRequest(spec(model, text) if text else model, gpu, Workload(None, prompt, output, batch=batch),
                       deployment(weights, kv_dtype, engine, tp, pp, server), gpus=gpus, simulate=simulate)


@st.cache_data(**CACHE, hash_funcs={PlanRequest: lambda r: r.key})
def result(req: PlanRequest) -> PlanResult:
    """api.plan_request, cached on the request (its ``key``: every field, an uploaded spec by value)."""
    return api.plan_request(req)


@st.cache_data(**CACHE, hash_funcs={PlanRequest: lambda r: r.key})
def remedies(req: PlanRequest) -> tuple:
    """planner.remedies: the single changes that make ``req`` fit, each planned (empty when it fits)."""
    from planner import remedies as rem

    return rem.remedies(req, result(req))


def plan(model: str, text: str, gpu: str, tp: int, weights: str, kv_dtype: str, engine: str,
         batch: int, prompt: int, output: int, gpus: int | None = None, simulate: bool = True) -> dict:
    """api.plan's dict of the cached ``result`` (pages not yet reading PlanResult)."""
    return _plain(result(request(model, text, gpu, tp, weights, kv_dtype, engine, batch, prompt, output, gpus,
                                 simulate)).as_dict())


@st.cache_data(**CACHE)
def fit(model: str, text: str, gpu: str, tp: int, weights: str, kv_dtype: str, engine: str,
        batch: int, prompt: int, output: int) -> dict:
    return _plain(api.fit(spec(model, text), gpu, batch, prompt, output, weights=weights, kv_dtype=kv_dtype,
                          engine=engine, tp=tp))


@st.cache_data(**CACHE)
def default_weights(model: str, text: str) -> str:
    return api.default_weights(spec(model, text))


def roofline(model: str, text: str, gpu: str, tp: int, weights: str, kv_dtype: str, engine: str) -> dict:
    """The scalars behind TTFT and TPOT (peaks, efficiencies, kernel factors), from the plan's result."""
    r = result(request(model, text, gpu, tp, weights, kv_dtype, engine, 1, 1024, 256, simulate=False))
    w, m = r.work, r.memory
    return {"peak_flops": w.peak_flops_per_s, "compute_dtype": w.compute_dtype,
            "bandwidth_bytes_per_s": w.bandwidth_bytes_per_s, "eff_memory": w.eff_memory, "eff_compute": w.eff_compute,
            "provenance": r.provenance["efficiencies"], "memory_factor": w.memory_factor,
            "compute_factor": w.compute_factor, "step_overhead_s": w.step_overhead_s,
            "layer_overhead_s": w.layer_overhead_s, "layers": w.layers_per_gpu, "total_memory_bytes": m.gpu_memory_bytes,
            "memory_source": r.provenance["gpu_memory_bytes"], "gpu_memory_utilization": m.gpu_memory_utilization,
            "price_usd_per_hour": r.cost.usd_per_hour / r.gpus_per_replica}


@st.cache_data(**CACHE)
def kv_curve(model: str, text: str, kv_dtype: str, engine: str, tp: int, batch: int,
             contexts: tuple[int, ...]) -> np.ndarray:
    """KV cache bytes per GPU over ``contexts`` at ``batch`` (api.kv_curve)."""
    return api.kv_curve(spec(model, text), kv_dtype, engine, tp, batch, contexts)


@st.cache_data(**CACHE)
def seed_kv(model: str, text: str, kv_dtype: str, batch: int, context: int) -> dict:
    """The textbook KV formula's terms and bytes (planner.kv.seed_kv_bytes)."""
    from planner import kv

    return kv.seed_kv_bytes(spec(model, text), kv_dtype, batch, context)


@st.cache_data(**CACHE)
def offload_curve(model: str, text: str, gpu: str, weights: str, context: int, kv_dtype: str = "fp16") -> tuple[dict, pd.DataFrame]:
    """GGUF partial offload: the solver's answer and decode tokens/s (batch 1) per layers on the GPU."""
    best, df = api.gguf_offload_curve(spec(model, text), gpu, weights=weights, context=context, kv_dtype=kv_dtype)
    return _plain(best), df


def variant(model: str, text: str, kind: str) -> ModelSpec:
    """The chosen model with its attention regrouped (MHA / GQA-k / MQA) or as an MLA what-if (planner.whatif)."""
    return whatif.attention_variant(spec(model, text), kind)


def variants(model: str, text: str) -> list[tuple[str, str]]:
    """(kind, label) of the attention variants worth comparing for this model (planner.whatif)."""
    return whatif.attention_variants(spec(model, text))


@st.cache_data(**CACHE)
def attention_row(model: str, text: str, kind: str, gpu: str, tp: int, weights: str, kv_dtype: str,
                  engine: str, batch: int, prompt: int, output: int) -> dict:
    v = variant(model, text, kind)
    ins = api.inspect_model(v, kv_dtype=kv_dtype, engine=engine, context=prompt + output, batch=batch,
                            weights=weights)
    f = api.fit(v, gpu, batch, prompt, output, weights=weights, kv_dtype=kv_dtype, engine=engine, tp=tp)
    pl = api.plan(v, gpu, batch, prompt, output, weights=weights, kv_dtype=kv_dtype, engine=engine, tp=tp,
                  simulate=False)
    return _plain({"attention": ins["attention"], "cached_per_token_per_layer": whatif.cached_per_token_per_layer(v),
                   "kv_bytes_per_token": ins["kv_bytes_per_token"], "kv_cache_bytes": ins["kv_cache_bytes"],
                   "weight_bytes": ins["weight_bytes"], "max_batch": f["max_batch"], "max_context": f["max_context"],
                   "fits": f["fits"], "tpot_s": pl["tpot_mean_value_s"], "output_tokens_per_s": pl["output_tokens_per_s"],
                   "spec_name": v.name})


@st.cache_data(**CACHE)
def variant_kv_curve(model: str, text: str, kind: str, kv_dtype: str, engine: str, tp: int, batch: int,
                     contexts: tuple[int, ...]) -> np.ndarray:
    return api.kv_curve(variant(model, text, kind), kv_dtype, engine, tp, batch, contexts)


@st.cache_data(**CACHE)
def format_row(model: str, text: str, weights: str) -> dict:
    ins = api.inspect_model(spec(model, text), weights=weights)
    return {"weight_bytes": ins["weight_bytes"], "bits_per_weight": ins["bits_per_weight"],
            "params_total": ins["params_total"]}


@st.cache_data(**CACHE)
def validation() -> pd.DataFrame:
    """Every measured point joined with its prediction (the end-to-end runs from the committed
    benchmark output profiles/validation/e2e-<engine>.csv, held out and in-sample)."""
    return validate.validation_table()


def _scored_file(module) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A validation module's committed scored rows (``predicted_path()``) and its ``summary``; empty frames without
    the file."""
    path = module.predicted_path()
    if not path.is_file():
        return pd.DataFrame(), pd.DataFrame()
    rows = pd.read_csv(path)
    return rows, module.summary(rows)


@st.cache_data(**CACHE)
def external_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Published serving runs no fit has seen, each scored against its prediction (the committed output of
    benchmarks/bench_external.py --write), and their summary per engine; empty frames without the file."""
    from planner import validate_external

    return _scored_file(validate_external)


@st.cache_data(**CACHE)
def throughput_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """TensorRT-LLM's published trtllm-bench cells scored against the simulated offline throughput (the committed
    output of benchmarks/bench_throughput.py --write), and their summary; empty frames without the file."""
    from planner import validate_throughput

    return _scored_file(validate_throughput)


@st.cache_data(**CACHE)
def trtllm_pool_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """TensorRT-LLM's start-up KV pool predicted for every carried start-up log (planner.validate_trtllm_pool), and
    the summary; empty frames without the file."""
    from planner import validate_trtllm_pool as vt

    d = vt.rows()
    if d.empty:
        return pd.DataFrame(), pd.DataFrame()
    p = vt.predict(d)
    cols = ["id", "engine_version", "model", "weights", "gpu", "tp", "ep", "free_gpu_memory_fraction",
            "weights_inside_torch_gib", "predicted_weights_gib", "available_kv_gib", "predicted_kv_gib", "error_pct",
            "error_given_weights_pct", "clean", "source_url"]
    return p[cols], vt.summary(p)


@st.cache_data(**CACHE)
def latency_bands() -> pd.DataFrame:
    """Per engine and metric: the band a plan states (measured / predicted, a percentile range of held-out runs)."""
    rows = []
    for engine in ("vllm", "sglang", "trtllm"):
        for metric, b in profiles.latency_bands(engine).items():
            rows.append({"engine": engine, "metric": metric, "low (x prediction)": b["low_ratio"],
                         "high (x prediction)": b["high_ratio"],
                         "percentiles": "-".join(f"{q:g}" for q in b.get("percentiles", (5, 95))),
                         "held-out runs": b["n"],
                         "coverage on held-out models": b["coverage_held_out"], "measured on": ", ".join(b.get("gpus", []))})
    return pd.DataFrame(rows)


@st.cache_data(**CACHE)
def capacity_plan(model: str, text: str, rate: float, prompt: int, output: int, ttft_s: float | None,
                  tpot_s: float | None, e2e_s: float | None, percentile: int, gpus: tuple[str, ...],
                  tps: tuple[int, ...], weights: tuple[str, ...], kv_dtypes: tuple[str, ...], engine: str,
                  distribution: str = "fixed", simulate_top: int = CAPACITY_SIMULATE_TOP,
                  sim_requests: int = CAPACITY_SIM_REQUESTS, server: str = "vllm",
                  pps: tuple[int, ...] = (), max_tokens: int | None = None) -> pd.DataFrame:
    """planner.slo.plan_capacity over the candidates, keyed by primitives (an empty tuple: that axis's
    whole default space). ``df.attrs`` carries the core's ``search`` counts and ``verdict``."""
    workload = slo.Workload(request_rate_per_s=rate, prompt_tokens=prompt, output_tokens=output,
                            distribution=distribution, max_tokens=max_tokens)
    targets = slo.Targets(ttft_s=ttft_s, tpot_s=tpot_s, e2e_s=e2e_s, percentile=percentile)
    cands = slo.Candidates(gpus=gpus, tps=tps, pps=pps, weights=weights, kv_dtypes=kv_dtypes, engine=engine, server=server,
                           simulate_top=simulate_top, sim_requests=sim_requests)
    return slo.plan_capacity(spec(model, text), workload, targets, cands)


@st.cache_data(**CACHE)
def sweep_grid(model: str, text: str, gpus: tuple[str, ...], weights: tuple[str, ...], kv_dtypes: tuple[str, ...],
               tps: tuple[int, ...], engine: str, batches: tuple[int, ...], prompts: tuple[int, ...],
               outputs: tuple[int, ...], server: str = "vllm") -> tuple[pd.DataFrame, list[dict]]:
    """planner.sweep.sweep over the grid: (the tidy frame, the impossible combinations with their reason)."""
    df = sweep.sweep([spec(model, text)], list(gpus), batches, prompts, outputs, weights=list(weights),
                     kv_dtypes=list(kv_dtypes), tps=list(tps), engine=engine, server=server)
    skipped = list(df.attrs.get("skipped", []))
    df.attrs = {}
    return df, skipped


@st.cache_data(**CACHE)
def max_batches(model: str, text: str, gpus: tuple[str, ...], formats: tuple[str, ...], tp: int, kv_dtype: str,
                engine: str, prompt: int, output: int) -> pd.DataFrame:
    """Largest batch that fits (MemoryModel.max_batch) per weight format and GPU, at this context.

    Memory grows with the batch, so a plan at batch ``b`` fits exactly when ``b <= max_batch``: the
    table answers "which GPUs does each format fit at batch b" for every b without recomputing.
    -1 marks a combination the core rejects (e.g. TP that does not divide the heads)."""
    s = spec(model, text)
    out = pd.DataFrame(-1, index=list(formats), columns=list(gpus), dtype=np.int64)
    for fmt_id in formats:
        for g in gpus:
            try:
                mm = api.memory_model(s, g, deployment(fmt_id, kv_dtype, engine, tp))
                out.loc[fmt_id, g] = int(mm.max_batch(prompt, output))
            except PlannerInputError:
                continue
    return out


@st.cache_data(**CACHE)
def format_rows(model: str, text: str, formats: tuple[str, ...]) -> pd.DataFrame:
    """Bits per weight and weight bytes of the whole model in every format (inspect_model per format)."""
    s = spec(model, text)
    rows = []
    for fmt_id in formats:
        try:
            ins = api.inspect_model(s, weights=fmt_id)
            rows.append({"format": fmt_id, "bits_per_weight": ins["bits_per_weight"],
                         "weight_bytes": ins["weight_bytes"], "error": ""})
        except PlannerInputError as e:
            rows.append({"format": fmt_id, "bits_per_weight": np.nan, "weight_bytes": np.nan, "error": str(e)})
    return pd.DataFrame(rows)


@st.cache_data(**CACHE)
def engine_capacity(model: str, text: str, gpu: str, tp: int, weights: str, kv_dtype: str, engine: str,
                    version: str | None, entry_point: str, gpu_memory_utilization: float | None,
                    max_model_len: int | None) -> dict:
    """The KV pool the engine allocates at start-up (planner.api.capacity), keyed by primitives.
    ``gpu_memory_utilization`` is vLLM's flag, SGLang's mem_fraction_static for sglang, TensorRT-LLM's
    free_gpu_memory_fraction for trtllm."""
    from planner.startup import FRACTION_SETTING

    return _plain(api.capacity(spec(model, text), gpu, tp=tp, weights=weights, kv_dtype=kv_dtype, engine=engine,
                               engine_version=version, entry_point=entry_point, max_model_len=max_model_len,
                               **{FRACTION_SETTING[engine]: gpu_memory_utilization}))


def engine_default_util(engine: str, version: str | None) -> float:
    """The release's default --gpu-memory-utilization (profiles/engines/<engine>.json)."""
    era, _, _ = profiles.engine_table(engine).resolve(version)
    return float(era["gpu_memory_utilization"])


def engine_versions(engine: str) -> list[str]:
    """Releases to offer: the first release of every era of the rules table, and the newest."""
    t = profiles.engine_table(engine)
    return sorted({str(e.since) for e in t.eras} | {str(t.newest)}, key=lambda v: Version.parse(v).parts,
                  reverse=True)


@st.cache_data(**CACHE)
def engine_log_check(log_text: str, model: str, text: str, gpu: str | None) -> dict:
    """A pasted start-up log against the planner (the CLI's engine-log report)."""
    from planner import cli_engine, enginelog, logcheck

    names = tuple(n for g in profiles.gpus().values() for n in g.nvml_names)
    log = enginelog.parse_log(log_text, names)
    s = spec(model, text)
    try:
        g = profiles.gpu(gpu) if gpu else cli_engine.resolve_gpu(log, None)
    except PlannerInputError as e:
        raise PlannerInputError("gpu", e.problem, "tick 'Use the sidebar's GPU' and pick the card there") from None
    return _plain(cli_engine.report(logcheck.check(log, s, g)))
