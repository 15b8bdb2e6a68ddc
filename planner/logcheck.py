"""A start-up log side by side with the planner's prediction of every line it printed.

``check(log, spec, gpu)`` recovers the engine's settings from the log (``planner/enginelog.py``),
fills what the log does not state with the engine's defaults for its version (each one listed as
assumed), predicts the start-up memory (``planner/startup.py``) and pairs each printed figure with
its prediction. The term that disagrees most (in GiB of KV budget) is named.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import profiles
from .enginelog import EngineLog
from .errors import PlannerInputError
from .formats import format_from_quantization_config
from .gpus import GpuSpec
from .spec import ModelSpec
from .startup import GIB, STARTUP, EngineSettings, StartupMemory

# (logged key, label, unit, how to read the prediction)
LINES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "vllm": (("total_gpu_memory_gib", "total GPU memory", "GiB"),
             ("requested_memory_gib", "total x gpu_memory_utilization", "GiB"),
             ("weights_gib", "model weights", "GiB"),
             ("non_torch_gib", "non-torch memory", "GiB"),
             ("activation_peak_gib", "activation peak", "GiB"),
             ("cuda_graph_estimate_gib", "CUDA graph estimate", "GiB"),
             ("kv_cache_gib", "KV cache memory", "GiB"),
             ("gpu_blocks", "GPU blocks", "blocks"),
             ("kv_cache_tokens", "GPU KV cache size", "tokens"),
             ("max_concurrency", "maximum concurrency", "x")),
    "sglang": (("avail_mem_before_load_gb", "free before loading", "GiB"),
               ("weights_gb", "weight load (mem usage)", "GiB"),
               ("avail_mem_after_load_gb", "free after loading", "GiB"),
               ("kv_tokens", "max_total_num_tokens", "tokens"),
               ("k_size_gb", "K cache", "GiB"),
               ("v_size_gb", "V cache", "GiB"),
               ("kv_size_gb", "KV cache (MLA)", "GiB")),
    "trtllm": (("total_gpu_memory_gib", "device total memory", "GiB"),
               ("weights_gib", "weights (inside torch)", "GiB"),
               ("outside_torch_gib", "outside torch after loading", "GiB"),
               ("activation_peak_gib", "dummy pass (inside torch)", "GiB"),
               ("non_torch_gib", "outside torch at the peak", "GiB"),
               ("peak_gib", "profiling peak", "GiB"),
               ("kv_cache_gib", "available KV cache memory", "GiB"),
               ("kv_pool_gib", "KV cache allocated", "GiB"),
               ("kv_cache_tokens", "max tokens in paged KV cache", "tokens")),
}
COMPONENTS = ("weights_gib", "non_torch_gib", "activation_peak_gib", "cuda_graph_estimate_gib",
              "avail_mem_before_load_gb", "weights_gb")
POOL = {"vllm": "kv_cache_tokens", "sglang": "kv_tokens", "trtllm": "kv_cache_tokens"}
NON_TORCH = ("cuda_context", "nccl", "runtime_workspaces", "non_torch")


@dataclass(frozen=True)
class LineCheck:
    key: str
    label: str
    unit: str
    logged: float
    predicted: float
    line: str

    @property
    def error_pct(self) -> float:
        return (self.predicted - self.logged) / self.logged * 100 if self.logged else float("nan")


@dataclass(frozen=True)
class LogCheck:
    log: EngineLog
    model: str
    gpu: str
    settings: EngineSettings
    startup: StartupMemory
    lines: tuple[LineCheck, ...]
    assumed: tuple[str, ...]

    def line(self, key: str) -> LineCheck | None:
        return next((c for c in self.lines if c.key == key), None)

    @property
    def pool(self) -> LineCheck | None:
        """The pool in tokens (or, for a log that prints only blocks, in blocks)."""
        return self.line(POOL[self.log.engine]) or self.line("gpu_blocks")

    @property
    def disagreeing_term(self) -> str:
        """The memory term whose error moves the KV budget most, in GiB: a printed component line,
        or, for a log that prints only weights and the KV memory, the unprinted remainder
        (activation peak + non-torch + CUDA graphs = requested - weights - KV memory)."""
        comp = [(c.label, c.predicted, c.logged) for c in self.lines if c.key in COMPONENTS and c.unit == "GiB"]
        kv, req, w = self.line("kv_cache_gib"), self.line("requested_memory_gib"), self.line("weights_gib")
        printed = {c.key for c in self.lines}
        if kv and w and not printed & {"non_torch_gib", "activation_peak_gib"}:
            requested = req.logged if req else self.startup.requested_bytes / GIB
            pred_rest = self.startup.requested_bytes / GIB - w.predicted - kv.predicted
            comp.append(("activation + non-torch + graphs (not printed)", pred_rest, requested - w.logged - kv.logged))
        if not comp:
            return ""
        label, pred, logged = max(comp, key=lambda x: abs(x[1] - x[2]))
        if abs(pred - logged) < 0.05:
            return "every printed term within 0.05 GiB"
        return f"{label}: predicted {pred:.2f} GiB, logged {logged:.2f} GiB"


def _weights_format(log: EngineLog, spec: ModelSpec) -> tuple[str, str]:
    q = str(log.setting("quantization") or "").lower()
    own = format_from_quantization_config(spec, profiles.formats())
    if own:
        return own, "the checkpoint's quantization_config"
    if q in ("fp8", "fp8_e4m3"):
        return "fp8", "quantization=fp8 (online)"
    if q == "bitsandbytes":
        return "bnb-nf4", "quantization=bitsandbytes without a checkpoint config: NF4 (vLLM's default)"
    dtype = str(log.setting("dtype") or spec.dtype).replace("float16", "fp16").replace("bfloat16", "bf16")
    dtype = {"half": "fp16", "auto": spec.dtype, "bfloat16": "bf16", "float16": "fp16"}.get(dtype, dtype)
    return (dtype if dtype in ("fp16", "bf16", "fp32") else spec.dtype), "the model dtype"


def settings_from_log(log: EngineLog, spec: ModelSpec, overrides: dict[str, Any] | None = None,
                      entry_point: str | None = None) -> tuple[EngineSettings, tuple[str, ...]]:
    """EngineSettings from what the log states; ``overrides`` (planner names) win over the log."""
    ov = dict(overrides or {})
    kw: dict[str, Any] = {"engine": log.engine, "version": ov.pop("version", None) or log.version}
    assumed = []
    if not kw["version"]:
        assumed.append(f"{log.engine} version: not in the log, the newest in the table is assumed")
    names = {"tp": "tp", "pp": "pp", "gpu_memory_utilization": "gpu_memory_utilization",
             "mem_fraction_static": "mem_fraction_static", "free_gpu_memory_fraction": "free_gpu_memory_fraction",
             "max_model_len": "max_model_len",
             "max_num_seqs": "max_num_seqs", "max_num_batched_tokens": "max_num_batched_tokens",
             "block_size": "block_size", "kv_cache_dtype": "kv_cache_dtype", "enforce_eager": "enforce_eager",
             "num_gpu_blocks_override": "num_gpu_blocks_override", "max_total_tokens": "max_total_tokens",
             "kv_cache_memory_bytes": "kv_cache_memory_bytes"}
    for name, field in names.items():
        v = ov.pop(name, None)
        if v is None:
            v = log.setting(name)
        if v is None or v == "":
            continue
        if field in ("kv_cache_dtype",):
            v = str(v)
        elif field == "enforce_eager":
            v = bool(v)
        elif isinstance(v, str):
            try:
                v = float(v) if "." in v else int(v)
            except ValueError:
                continue
        kw[field] = v
    for name in ("tp", "pp"):
        if name not in kw:
            assumed.append(f"{name} = 1: not stated in the log")
    fmt, why = _weights_format(log, spec)
    kw["weights"] = ov.pop("weights", None) or fmt
    kw["entry_point"] = entry_point or log.entry_point or "serve"
    if not (entry_point or log.entry_point) and log.engine == "vllm":
        assumed.append("entry point: `vllm serve` / the API server (the log does not show `LLM(...)`)")
    if ov:
        raise PlannerInputError("settings", f"unknown setting(s) {sorted(ov)}", f"use {', '.join(names)}")
    return EngineSettings(**kw), tuple(assumed)


def predicted_value(engine: str, key: str, m: StartupMemory) -> float | None:
    t = {x.name: x for x in m.terms}
    if engine == "trtllm":
        # the memory outside torch holds the estimation's temporary KV cache (the C++ pool) at both readings
        outside = (t["non_torch"].bytes + t["estimation_kv_cache"].bytes) / GIB
        return {"total_gpu_memory_gib": m.total_bytes / GIB, "weights_gib": t["weights"].bytes / GIB,
                "outside_torch_gib": outside, "non_torch_gib": outside,
                "activation_peak_gib": t["activation_peak"].bytes / GIB,
                "peak_gib": sum(x.bytes for x in m.terms) / GIB, "kv_cache_gib": m.kv_budget_bytes / GIB,
                "kv_pool_gib": m.kv_tokens * m.bytes_per_token / GIB, "kv_cache_tokens": m.kv_tokens}.get(key)
    counted_non_torch = sum(t[n].bytes for n in NON_TORCH if n in t and t[n].counted)
    table = {
        "total_gpu_memory_gib": m.total_bytes / GIB, "requested_memory_gib": m.requested_bytes / GIB,
        "weights_gib": t["weights"].bytes / GIB if "weights" in t else None,
        "non_torch_gib": counted_non_torch / GIB,
        "activation_peak_gib": t["activation_peak"].bytes / GIB if "activation_peak" in t else None,
        "cuda_graph_estimate_gib": t["cuda_graph_estimate"].bytes / GIB if "cuda_graph_estimate" in t else None,
        "kv_cache_gib": m.kv_budget_bytes / GIB, "gpu_blocks": m.num_blocks, "kv_cache_tokens": m.kv_tokens,
        "max_concurrency": m.max_concurrency, "kv_tokens": m.kv_tokens,
        "avail_mem_before_load_gb": t["free_before_load"].bytes / GIB if "free_before_load" in t else None,
        "weights_gb": t["weights"].bytes / GIB if "weights" in t else None,
        "avail_mem_after_load_gb": (t["free_before_load"].bytes - t["weights"].bytes) / GIB
        if "free_before_load" in t else None,
        "k_size_gb": m.kv_budget_bytes / 2 / GIB if engine == "sglang" else None,
        "v_size_gb": m.kv_budget_bytes / 2 / GIB if engine == "sglang" else None,
        "kv_size_gb": m.kv_budget_bytes / GIB if engine == "sglang" else None,
    }
    return table.get(key)


def check(log: EngineLog, spec: ModelSpec, gpu: GpuSpec, overrides: dict[str, Any] | None = None,
          entry_point: str | None = None) -> LogCheck:
    settings, assumed = settings_from_log(log, spec, overrides, entry_point)
    m = STARTUP[log.engine](spec, gpu, settings, profiles.engine_table(log.engine), profiles.formats())
    assumed = assumed + tuple(f"{k} = {v.value}: {v.source}" for k, v in m.settings if v.source != "given"
                              and log.setting(k) is None)
    lines = []
    for key, label, unit in LINES[log.engine]:
        lv = log.line(key)
        pred = predicted_value(log.engine, key, m)
        if lv is None or pred is None:
            continue
        lines.append(LineCheck(key, label, unit, lv.value, float(pred), lv.line))
    return LogCheck(log, spec.name, gpu.id, settings, m, tuple(lines), assumed)


def with_model(check_: LogCheck, spec: ModelSpec) -> LogCheck:
    return replace(check_, model=spec.name)


# ---- every committed log (profiles/engine-logs), the KV-pool errors and the bands --------------
# settings as the log metadata names them -> the planner's names
META_SETTINGS = {"tensor_parallel_size": "tp", "tp_size": "tp", "pipeline_parallel_size": "pp", "pp_size": "pp",
                 "gpu_memory_utilization": "gpu_memory_utilization", "mem_fraction_static": "mem_fraction_static",
                 "max_model_len": "max_model_len", "context_length": "max_model_len", "max_num_seqs": "max_num_seqs",
                 "max_num_batched_tokens": "max_num_batched_tokens", "kv_cache_dtype": "kv_cache_dtype",
                 "enforce_eager": "enforce_eager", "block_size": "block_size", "max_total_tokens": "max_total_tokens",
                 "num_gpu_blocks_override": "num_gpu_blocks_override", "chunked_prefill_size": "max_num_batched_tokens",
                 "max_running_requests": "max_num_seqs", "page_size": "block_size",
                 "free_gpu_memory_fraction": "free_gpu_memory_fraction", "max_seq_len": "max_model_len",
                 "max_batch_size": "max_num_seqs", "max_num_tokens": "max_num_batched_tokens",
                 "tokens_per_block": "block_size"}

# version groups reported apart (docs/validation.md); the band of a plan is its group's spread
GROUPS = {"vllm": ((None, "0.6.0", "vLLM < 0.6 (V0)"), ("0.6.0", "0.8.0", "vLLM 0.6-0.7 (V0)"),
                   ("0.8.0", "0.11.0", "vLLM 0.8-0.10 (V1)"), ("0.11.0", "0.20.0", "vLLM 0.11-0.19 (V1)"),
                   ("0.20.0", None, "vLLM >= 0.20 (V1, CUDA-graph estimate)")),
          "sglang": ((None, "0.4.7", "SGLang < 0.4.7"), ("0.4.7", None, "SGLang >= 0.4.7")),
          "trtllm": ((None, None, "TensorRT-LLM (PyTorch backend)"),)}


def version_group(engine: str, version: str | None) -> str:
    from .engines import Version
    v = profiles.engine_table(engine).newest if not version else Version.parse(version)
    for lo, hi, label in GROUPS[engine]:
        if (lo is None or v >= Version.parse(lo)) and (hi is None or v < Version.parse(hi)):
            return label
    return engine


def meta_overrides(meta: dict) -> dict[str, Any]:
    ov: dict[str, Any] = {}
    for k, v in (meta.get("settings") or {}).items():
        name = META_SETTINGS.get(k)
        if name is None or v is None or isinstance(v, bool) and name != "enforce_eager":
            continue
        if isinstance(v, str) and name != "kv_cache_dtype":
            continue
        ov.setdefault(name, v)
    if meta.get("version"):
        ov["version"] = meta["version"]
    if meta.get("weights"):  # the planner's weight format where the bundled config is another checkpoint's
        ov["weights"] = meta["weights"]
    return ov


def committed_checks() -> list[tuple[str, dict, LogCheck | None, str]]:
    """(id, metadata, check or None, why not) for every committed log."""
    from .enginelog import parse_log

    names = tuple(n for g in profiles.gpus().values() for n in g.nvml_names)
    out = []
    for lid, text, meta in profiles.engine_logs():
        folder, gpu = meta.get("model_folder"), meta.get("gpu")
        if not folder or gpu not in profiles.gpus():
            out.append((lid, meta, None, "no bundled config" if not folder else f"no GPU profile for {gpu!r}"))
            continue
        try:
            log = parse_log(text, names)
            out.append((lid, meta, check(log, profiles.load_model(folder), profiles.gpu(gpu), meta_overrides(meta),
                                         meta.get("entry_point_planner")), ""))
        except PlannerInputError as e:
            out.append((lid, meta, None, str(e)))
    return out


def pool_errors(checks=None):
    """One row per committed log whose pool line can be predicted: logged vs predicted KV pool."""
    import pandas as pd

    rows = []
    for lid, meta, c, _why in checks if checks is not None else committed_checks():
        if c is None or c.pool is None:
            continue
        p = c.pool
        rows.append({"id": lid, "engine": c.log.engine, "version": c.startup.version,
                     "group": version_group(c.log.engine, c.startup.version), "era": c.startup.era,
                     "gpu": c.gpu, "tp": c.settings.tp, "pp": c.settings.pp, "model": c.model, "line": p.label,
                     "logged": p.logged, "predicted": p.predicted, "error_pct": p.error_pct,
                     "term": c.disagreeing_term, "source": meta.get("source", "")})
    return pd.DataFrame(rows)


# ---- calibration entries from logs (engine-log --save) ------------------------------------------
def calibration_entry(c: LogCheck, source: str) -> dict:
    """What one log measured, against what the planner predicted for the same settings: the
    budget offset (logged - predicted KV memory) and, where printed, the non-torch offset."""
    from datetime import UTC, datetime

    m = c.startup
    budget = c.line("kv_cache_gib")
    pool = c.pool
    entry: dict[str, Any] = {
        "engine": c.log.engine, "version": m.version, "era": m.era, "gpu": c.gpu, "tp": c.settings.tp,
        "pp": c.settings.pp, "model": c.model, "max_num_batched_tokens": m.setting("max_num_batched_tokens")
        if c.log.engine in SAME_LIMITS else None,
        "max_num_seqs": m.setting("max_num_seqs") if c.log.engine in SAME_LIMITS else None,
        "source": source, "saved": datetime.now(UTC).date().isoformat()}
    if c.log.engine == "trtllm":  # its budget also moves with the fraction and the weights
        entry.update(free_gpu_memory_fraction=m.setting("free_gpu_memory_fraction"), weights=c.settings.weights)
    if budget is not None:
        entry["budget_offset_bytes"] = (budget.logged - budget.predicted) * GIB
    elif pool is not None and pool.predicted:
        entry["budget_offset_bytes"] = (pool.logged / pool.predicted - 1) * m.kv_budget_bytes
    nt = c.line("non_torch_gib")
    if nt is not None:
        entry["non_torch_offset_bytes"] = (nt.logged - nt.predicted) * GIB
    return entry


def save_calibration(c: LogCheck, source: str):
    """Append the log's entry to profiles/engine_calibration.json (an entry for the same engine era,
    GPU, TP, PP and model is replaced)."""
    import json

    path = profiles.engine_calibration_path()
    data = profiles.read_for_update(path, {"entries": []})
    e = calibration_entry(c, Path_name(source))
    key = ("engine", "era", "gpu", "tp", "pp", "model")
    data["entries"] = [x for x in data.get("entries", []) if tuple(x.get(k) for k in key) != tuple(e[k] for k in key)]
    data["entries"].append(e)
    path.write_text(json.dumps(data, indent=2) + "\n")
    profiles.engine_calibrations.cache_clear()
    return path


def Path_name(source: str) -> str:  # noqa: N802 - a file name, never a host path
    return source.replace("\\", "/").rstrip("/").split("/")[-1]


SAME_LIMITS = ("vllm", "trtllm")  # engines whose saved budget depends on the scheduler limits


def matching_calibration(engine: str, era: str, gpu: str, tp: int, pp: int, model: str,
                         mnbt: int | None, seqs: int | None, extra: dict | None = None,
                         non_torch_scale: float = 1.0) -> tuple[float, str] | None:
    """The budget correction (bytes) a saved log gives this plan, and what it is based on: the
    whole offset when the same model ran with the same scheduler limits (and ``extra`` settings: TensorRT-LLM's
    fraction and weights), else the non-torch part, x ``non_torch_scale`` (how much of a byte outside torch the
    budget loses: 1 for vLLM, TensorRT-LLM's fraction of what the peak leaves free)."""
    best = None
    for e in profiles.engine_calibrations():
        if (e.get("engine"), e.get("era"), e.get("gpu"), e.get("tp"), e.get("pp")) != (engine, era, gpu, tp, pp):
            continue
        same = (e.get("model") == model and e.get("max_num_batched_tokens") == mnbt and e.get("max_num_seqs") == seqs
                and all(e.get(k) == v for k, v in (extra or {}).items()))
        if same and "budget_offset_bytes" in e:
            return float(e["budget_offset_bytes"]), f"the saved log {e['source']} of this model and settings"
        if "non_torch_offset_bytes" in e and best is None:
            best = (-float(e["non_torch_offset_bytes"]) * non_torch_scale,
                    f"the non-torch memory of the saved log {e['source']}")
    return best


def band(engine: str, version: str | None, tp: int) -> dict[str, Any]:
    """The spread of the engine's real pool around the prediction over the committed logs of this
    version group: low/high = the smallest and largest (real - predicted) / predicted, n the logs.
    A pool of N tokens is reported as N, between N x (1 + low) and N x (1 + high). With fewer than 3
    logs in the group, the engine's band of published start-up figures where its table stores one
    (``startup_pool_band``: TensorRT-LLM's, from profiles/validation/trtllm-startup.csv), else every log of the
    same engine core (and ``group`` says so)."""
    df = _errors_table()
    group = version_group(engine, version)
    sel = df[df["group"] == group] if not df.empty else df
    stored = dict(profiles.engine_table(engine).constants).get("startup_pool_band")
    if len(sel) < 3 and stored is not None:
        b = stored.value
        return {"group": b["group"], "n": int(b["n"]), "low_pct": float(b["low_pct"]), "high_pct": float(b["high_pct"]),
                "median_pct": float(b["median_pct"])}
    label = group
    if len(sel) < 3 and not df.empty:  # too few: every group of the same engine core (V0 or V1)
        core = "(V1" in group
        sel = df[(df["engine"] == engine) & (df["group"].str.contains("(V1", regex=False) == core)]
        label = f"{group} (too few logs: every {engine} {'V1' if core else 'V0'} log)"
    if sel.empty:
        return {"group": label, "n": 0, "low_pct": 0.0, "high_pct": 0.0, "median_pct": 0.0}
    real = (1 / (1 + sel["error_pct"] / 100) - 1) * 100  # error = (predicted - logged) / logged
    return {"group": label, "n": int(len(sel)), "low_pct": float(real.min()), "high_pct": float(real.max()),
            "median_pct": float(real.median())}


_ERRORS = None


def _errors_table():
    global _ERRORS
    if _ERRORS is None:
        _ERRORS = pool_errors()
    return _ERRORS
