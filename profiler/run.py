"""Measure a model built from its config: memory, prefill and per-step decode time, over a matrix.

The method of gpt-fast's benchmark: warm up, synchronise the device around every timed region,
and report achieved GB/s and TFLOP/s beside tokens/s. Bytes and FLOPs of a step come from the
planner's own counts (``TimingModel.decode_step`` / ``prefill``), so "achieved" is the planner's
traffic divided by the measured time.

One matrix point = one batch x prompt: a prefill of ``batch`` random prompts through the model's
forward (``logits_to_keep=1``, as ``generate`` does), then ``warmup + steps`` decode steps of one
token per sequence (greedy argmax), each timed alone (CUDA events on a GPU, ``perf_counter`` on the
CPU); the cache is the one the model creates (a ``DynamicCache`` for attention models). torch and
transformers are imported by the caller (``profiler.cli``) only when the command runs; this module
imports them at the top.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import transformers

from planner import api, profiles
from planner import kv as kvmod
from planner.errors import PlannerInputError
from planner.formats import FormatTable
from planner.gpus import GpuSpec
from planner.measurefile import append_row, read_table
from planner.memory import Deployment
from planner.params import params_total
from planner.spec import ModelSpec
from planner.timing import Efficiency, KernelFactor, build_timing

from .cache_bytes import cache_tensor_bytes

DTYPES = {"bf16": (torch.bfloat16, 2), "fp16": (torch.float16, 2), "fp32": (torch.float32, 4)}
ENGINE = "transformers"  # the profiler runs the HF forward: its cache layout is the transformers one
KEY = ("device", "dtype", "attn", "batch", "prompt", "warmup", "steps")

COLUMNS = [
    "status", "error", "finished_at", "device", "gpu", "gpu_name", "model", "model_type", "engine", "dtype", "attn", "attn_used",
    "batch", "prompt", "output", "warmup", "steps", "params", "param_bytes", "kv_bytes_prefill", "kv_bytes",
    "context_end", "peak_allocated_bytes", "peak_reserved_bytes", "nvml_used_bytes", "non_torch_bytes",
    "prefill_s", "decode_step_median_s", "decode_step_p90_s", "decode_step_mean_s", "decode_context_median",
    "decode_tokens_per_s", "prefill_tokens_per_s", "decode_step_bytes", "decode_step_flops",
    "decode_achieved_bytes_per_s", "decode_achieved_flops_per_s", "prefill_bytes", "prefill_flops",
    "prefill_achieved_flops_per_s", "timer", "experts_used",
]


@dataclass
class Request:
    """One profiling run: a model and the matrix to measure it over."""

    model: str                     # bundled name, config.json path, or a checkpoint folder
    device: str = "cuda"
    dtype: str = "bf16"
    batches: tuple[int, ...] = (1, 8, 32)
    prompts: tuple[int, ...] = (128, 2048)
    output: int = 128
    attn: str = "sdpa"
    out_dir: Path | None = None
    steps: int | None = None       # timed decode steps (default: output)
    warmup: int = 3                # untimed decode steps before the timed ones (+ one untimed prefill)
    command: str = ""
    progress: bool = True
    seed: int = 0
    # admit(batch, prompt, timing) -> False: the point is not started (e.g. a time budget is spent)
    admit: Callable[[int, int, object], bool] | None = None
    report: Callable[[dict], None] | None = None  # called with each row once it is written

    @property
    def timed_steps(self) -> int:
        return max(1, self.steps if self.steps is not None else self.output)


# ---- the model ---------------------------------------------------------------------------------
def read_config(model: str) -> tuple[dict, str, Path | None]:
    """(config dict, model name, checkpoint folder if it holds weights) for a name or a path.

    Read through the planner's checked reader (size, depth, JSON syntax) and named by its rule
    (profiles.model_name): the profiler accepts exactly the configs the planner accepts."""
    p = Path(model).expanduser()
    if p.is_dir() or p.is_file():
        cfg_path = p / "config.json" if p.is_dir() else p
        cfg = profiles.read_json(cfg_path, "config.json")
        if not isinstance(cfg, dict):
            raise PlannerInputError("config.json", f"{cfg_path} must hold a JSON object", "point at the model's config.json")
        folder = cfg_path.parent
        weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
        return cfg, profiles.model_name(cfg_path, cfg), folder if weights and cfg_path.name == "config.json" else None
    spec = profiles.load_model(model)
    return profiles.read_json(profiles.ROOT / "models" / spec.name / "config.json", "config.json"), spec.name, None


def hf_config(cfg: dict):
    """The transformers config; a multimodal wrapper's text_config is used on its own."""
    cfg = dict(cfg)
    if isinstance(cfg.get("text_config"), dict) and "num_hidden_layers" not in cfg:
        text = dict(cfg["text_config"])
        text.setdefault("model_type", str(cfg.get("model_type", "")) + "_text")
        cfg = text
    cfg.pop("quantization_config", None)  # random weights in the run's dtype, not the checkpoint's format
    try:
        return transformers.AutoConfig.for_model(**cfg)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise PlannerInputError("config.json", f"transformers cannot build this config ({_one_line(e)})",
                                "profile a model type transformers knows (model_type)") from None


def _one_line(e: BaseException, limit: int = 200) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:limit]


def build_model(cfg: dict, checkpoint: Path | None, device: str, dtype: str, attn: str):
    """Random weights from the config (exact for memory and speed), or a local checkpoint's."""
    tdtype = DTYPES[dtype][0]
    conf = hf_config(cfg)
    if checkpoint is not None:
        return _from_checkpoint(checkpoint, device, tdtype, attn)
    else:
        try:
            with torch.device(device):
                model = transformers.AutoModelForCausalLM.from_config(conf, dtype=tdtype, attn_implementation=attn)
        except ValueError as e:  # e.g. Gemma 2 (logit soft-capping) has no sdpa path: eager, recorded as such
            if attn == "eager" or "attention implementation" not in str(e):
                raise
            with torch.device(device):
                model = transformers.AutoModelForCausalLM.from_config(conf, dtype=tdtype, attn_implementation="eager")
    return model.eval()


def _from_checkpoint(checkpoint: Path, device: str, tdtype, attn: str):
    """A local checkpoint's weights. ``device_map`` (straight onto the device) needs accelerate, which
    requirements.txt installs; without it the weights load on the CPU and move."""
    try:
        import accelerate  # noqa: F401
        kw = {"device_map": device}
    except ImportError:
        kw = {}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=tdtype, attn_implementation=attn, **kw)
    except (OSError, ValueError) as e:
        raise PlannerInputError("model", f"{checkpoint} cannot be loaded as a checkpoint ({_one_line(e)})",
                                "point at the config.json alone to profile random weights") from None
    return (model if kw else model.to(device)).eval()


def param_bytes(model) -> tuple[int, int]:
    """(parameters, bytes) of the model's parameters (tied tensors counted once)."""
    ps = list(model.parameters())
    return sum(p.numel() for p in ps), sum(p.numel() * p.element_size() for p in ps)


# ---- the planner's view of the same run ---------------------------------------------------------
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_spec() -> GpuSpec:
    """A stand-in "GPU" for the host: only its byte and FLOP counts are used, never its speed."""
    return GpuSpec(id="cpu", display_name=cpu_name(), vendor="host",
                   memory_bytes=float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
                   memory_bandwidth_bytes_per_s=profiles.host_bandwidth_bytes_per_s(),
                   peak_flops=(("bf16", 1e12), ("fp16", 1e12), ("fp32", 1e12)))


def timing_for(spec: ModelSpec, gpu: GpuSpec, dtype: str):
    """The planner's TimingModel of the transformers engine running ``spec`` in ``dtype`` on ``gpu``.

    Only its byte and FLOP counts are used here (they do not depend on the GPU's speed).
    """
    dep = Deployment(weights=dtype, kv_dtype=dtype, engine=ENGINE)
    table, bundled = format_table(dtype)
    if gpu.id != "cpu" and bundled:
        return api.build_plan(spec, gpu.id, dep).timing
    eff = Efficiency(**profiles.efficiency_defaults())
    return build_timing(spec, gpu, dep, table, eff, KernelFactor())


def format_table(dtype: str) -> tuple[FormatTable, bool]:
    """The bundled weight-format table when it lists ``dtype``, else a one-format table holding
    every tensor in ``dtype`` (what a model built from its config in that dtype is)."""
    try:
        table = profiles.formats()
        table.get(dtype)
        return table, True
    except PlannerInputError:
        bits = 8 * DTYPES[dtype][1]
        return FormatTable.from_dict({
            "storage_types": {dtype: {"bits_per_weight": bits, "source": f"IEEE/bfloat16 {bits}-bit element"}},
            "formats": {dtype: {"family": "float", "compute_dtype": dtype, "roles": {"default": dtype, "norm": dtype}}}}), False


def predicted_param_bytes(spec: ModelSpec, dtype: str) -> int:
    """Every tensor of a model built from its config in ``dtype``: params x element size."""
    return params_total(spec) * DTYPES[dtype][1]


def predicted_kv_bytes(spec: ModelSpec, dtype: str, batch: int, context: int) -> float:
    groups = kvmod.layer_groups(spec, dtype, ENGINE, state_bytes=DTYPES[dtype][1])
    return float(kvmod.kv_cache_bytes(groups, batch, context, ENGINE))


# ---- devices -----------------------------------------------------------------------------------
class Device:
    """Synchronisation and memory counters of one device; NaN where the device has none."""

    def __init__(self, name: str):
        self.name = name
        self.cuda = name.startswith("cuda")
        self.nvml = None
        if self.cuda:
            try:
                import pynvml  # nvidia-ml-py
                pynvml.nvmlInit()
                self.nvml = pynvml
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            except Exception:  # noqa: BLE001 - no NVML: record NaN rather than fail the run
                self.nvml = None

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    @property
    def timer(self) -> str:
        return "cuda_event" if self.cuda else "perf_counter"

    def start(self):
        """Start a timed region on an idle device: a recorded CUDA event, or the host clock."""
        self.sync()
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_s(self, start) -> float:
        """Seconds from ``start`` until the device has finished all the work queued since."""
        if not self.cuda:
            return time.perf_counter() - start
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in ms

    def reset_peak(self):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def memory(self) -> dict[str, float]:
        if not self.cuda:  # CPU: torch has no allocator statistics here; no honest peak to report
            return {"peak_allocated_bytes": math.nan, "peak_reserved_bytes": math.nan, "nvml_used_bytes": math.nan,
                    "non_torch_bytes": math.nan}
        reserved = torch.cuda.memory_reserved()
        used = float(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used) if self.nvml else math.nan
        return {"peak_allocated_bytes": float(torch.cuda.max_memory_allocated()),
                "peak_reserved_bytes": float(torch.cuda.max_memory_reserved()),
                "nvml_used_bytes": used, "non_torch_bytes": used - reserved}

    def free(self):
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def gpu_name(self) -> str:
        if self.cuda:
            return torch.cuda.get_device_name()
        return cpu_name()

    def gpu_id(self) -> str:
        if not self.cuda:
            return "cpu"
        g = profiles.gpu_for_nvml_name(self.gpu_name())
        return g.id if g else re.sub(r"[^A-Za-z0-9.]+", "-", self.gpu_name()).strip("-")

    def env(self) -> dict:
        out = {"device": self.name, "gpu_name": self.gpu_name(), "gpu": self.gpu_id(), "torch": torch.__version__,
               "transformers": transformers.__version__, "python": sys.version.split()[0],
               "platform": platform.platform(), "cpu_threads": torch.get_num_threads()}
        if self.cuda:
            out["cuda"] = torch.version.cuda
            out["total_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
        if self.nvml:
            n, h = self.nvml, self.handle
            out["driver"] = n.nvmlSystemGetDriverVersion()
            out["nvml_total_memory_bytes"] = n.nvmlDeviceGetMemoryInfo(h).total
            for label, clk in (("sm", n.NVML_CLOCK_SM), ("memory", n.NVML_CLOCK_MEM)):
                try:
                    out[f"clock_{label}_mhz"] = n.nvmlDeviceGetClockInfo(h, clk)
                    out[f"clock_{label}_max_mhz"] = n.nvmlDeviceGetMaxClockInfo(h, clk)
                except n.NVMLError:
                    pass
            try:
                out["power_limit_w"] = n.nvmlDeviceGetPowerManagementLimit(h) / 1000
            except n.NVMLError:
                pass
        return out


# ---- one point ---------------------------------------------------------------------------------
def _forward(model, ids, cache, keep=None):
    kw = {"logits_to_keep": keep} if keep else {}
    with torch.no_grad():
        out = model(input_ids=ids, past_key_values=cache, use_cache=True, **kw)
    return out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)


def measure_point(model, dev: Device, vocab: int, batch: int, prompt: int, warmup: int, steps: int) -> dict:
    """Prefill ``batch`` x ``prompt`` random tokens, then ``warmup + steps`` single-token decode steps."""
    gen = torch.Generator().manual_seed(batch * 100_003 + prompt)
    ids = torch.randint(0, vocab, (batch, prompt), generator=gen).to(dev.name)
    if warmup:  # one untimed prefill: kernel selection and allocator growth happen here, not in the timing
        _forward(model, ids, None, keep=1)
        dev.free()
    dev.reset_peak()
    t0 = dev.start()
    cache, nxt = _forward(model, ids, None, keep=1)
    prefill_s = dev.elapsed_s(t0)
    kv_prefill = cache_tensor_bytes(cache)
    times = []
    for i in range(warmup + steps):
        t0 = dev.start()
        cache, nxt = _forward(model, nxt, cache)
        if i >= warmup:
            times.append(dev.elapsed_s(t0))
        else:
            dev.sync()
    mem = dev.memory()
    t = np.asarray(times)
    return {"prefill_s": prefill_s, "kv_bytes_prefill": kv_prefill, "kv_bytes": cache_tensor_bytes(cache),
            "context_end": prompt + warmup + steps, "decode_step_median_s": float(np.median(t)),
            "decode_step_p90_s": float(np.percentile(t, 90)), "decode_step_mean_s": float(t.mean()),
            "timer": dev.timer, **mem}


def derived(row: dict, tm, batch: int, prompt: int, warmup: int, steps: int) -> dict:
    """Tokens/s, and achieved GB/s and FLOP/s from the planner's byte and FLOP counts."""
    ctx_mid = prompt + warmup + (steps - 1) / 2  # tokens cached before the median timed step
    dec = tm.decode_step(batch, ctx_mid)
    pre = tm.prefill(batch, prompt)
    step, pre_s = row["decode_step_median_s"], row["prefill_s"]
    return {"decode_context_median": ctx_mid, "decode_tokens_per_s": batch / step,
            "prefill_tokens_per_s": batch * prompt / pre_s,
            "decode_step_bytes": float(dec["bytes"]), "decode_step_flops": float(dec["flops"]),
            "decode_achieved_bytes_per_s": float(dec["bytes"]) / step,
            "decode_achieved_flops_per_s": float(dec["flops"]) / step,
            "prefill_bytes": float(pre["bytes"]), "prefill_flops": float(pre["flops"]),
            "prefill_achieved_flops_per_s": float(pre["flops"]) / pre_s}


# How each device says it ran out of memory: CUDA and ROCm ("CUDA out of memory"), MPS ("MPS backend out
# of memory"), XPU, and the CPU allocator (c10 DefaultCPUAllocator: "can't allocate memory ... Error code
# 12 (Cannot allocate memory)"); Python's own MemoryError.
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory", "failed to allocate")


def is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.OutOfMemoryError | MemoryError):
        return True
    return any(m in str(e).lower() for m in OOM_MARKERS)


# ---- the run -----------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")


def done_points(out_dir: Path, model: str) -> tuple[set[tuple], Path | None]:
    """Points already measured for ``model`` in ``out_dir`` (any status but ``skipped``: a point
    skipped for a missing kernel is measured by a rerun that has it), and the newest CSV.

    Complete rows only (measurefile.read_table): a row cut short is not a point, so it is measured
    again; a damaged file is refused before anything is measured."""
    files = sorted(out_dir.glob(f"{_safe(model)}_*.csv"))
    seen: set[tuple] = set()
    for f in files:
        t = read_table(f)
        if t.header and not set(KEY) | {"status"} <= set(t.header):
            raise PlannerInputError(str(f), "has other columns than this profiler writes",
                                    "give another --out folder, or move the file away")
        if not t.header:
            continue
        idx = [t.header.index(k) for k in KEY]
        st = t.header.index("status")
        seen.update(tuple(r[i] for i in idx) for r in t.rows if r[st] != "skipped")
    return seen, (files[-1] if files else None)


def matrix(req: Request) -> list[tuple[int, int]]:
    """Every (batch, prompt), smallest first, so an OOM ends the run's tail, not its start."""
    return sorted(((b, p) for b in req.batches for p in req.prompts), key=lambda bp: (bp[0] * bp[1], bp))


@dataclass
class Run:
    """What one ``run`` call knows before it builds the model: the points to measure, the CSV they
    go to, the planner's timing model, and the columns every row of this model shares."""

    dev: Device
    cfg: dict
    checkpoint: Path | None
    csv_path: Path
    todo: list[tuple[int, int]]
    timing: object  # planner.timing.TimingModel
    base: dict


def prepare(req: Request) -> Run:
    """Read the config, find the points not yet measured, write the environment and config files."""
    if req.dtype not in DTYPES:
        raise ValueError(f"dtype {req.dtype!r}: choose one of {', '.join(DTYPES)}")
    torch.manual_seed(req.seed)
    dev = Device(req.device)
    cfg, name, checkpoint = read_config(req.model)
    spec = ModelSpec.from_hf_config(cfg, name)
    out_dir = Path(req.out_dir) if req.out_dir else profiles.ROOT / "measurements" / _safe(dev.gpu_id())
    out_dir.mkdir(parents=True, exist_ok=True)
    seen, latest = done_points(out_dir, name)
    key = (req.device, req.dtype, req.attn)
    todo = [(b, p) for b, p in matrix(req)
            if tuple(str(v) for v in (*key, b, p, req.warmup, req.timed_steps)) not in seen]
    csv_path = latest or out_dir / f"{_safe(name)}_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.csv"
    _write_env(csv_path, dev, req, name)
    (out_dir / f"{_safe(name)}.config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    gpu = profiles.gpu(dev.gpu_id()) if dev.cuda and profiles.gpu_for_nvml_name(dev.gpu_name()) else cpu_spec()
    base = {"device": req.device, "gpu": dev.gpu_id(), "gpu_name": dev.gpu_name(), "model": name,
            "model_type": spec.model_type, "engine": ENGINE, "dtype": req.dtype, "attn": req.attn,
            "output": req.output, "warmup": req.warmup, "steps": req.timed_steps}
    return Run(dev, cfg, checkpoint, csv_path, todo, timing_for(spec, gpu, req.dtype), base)


def model_columns(model) -> dict:
    """The row columns that need the built model: its parameters and the kernels it chose."""
    n_params, p_bytes = param_bytes(model)
    return {"params": n_params, "param_bytes": p_bytes,
            "attn_used": getattr(model.config, "_attn_implementation", ""),
            "experts_used": experts_used(model)}


def experts_used(model) -> str:
    """How the MoE experts run (transformers 5 ``experts_implementation``: grouped_mm, batched_mm,
    eager), or "" for a model without experts (its config still answers "eager")."""
    if not any(type(m).__name__.endswith("Experts") for m in model.modules()):
        return ""
    return str(getattr(model.config, "_experts_implementation", None) or "")


def run(req: Request) -> Path:
    """Measure every matrix point not yet in ``req.out_dir`` and append one CSV row per point.

    A model that cannot be built (out of memory, a config this transformers cannot build) is one
    row per point with the reason, not an exception; so is a point that fails.
    """
    r = prepare(req)
    if not r.todo or (req.admit and not any([req.admit(b, p, r.timing) for b, p in r.todo])):
        return r.csv_path  # nothing to measure, or nothing admitted: no model is built
    try:
        model = build_model(r.cfg, r.checkpoint, req.device, req.dtype, req.attn)
    except Exception as e:  # noqa: BLE001 - recorded per point, like a failed point
        return _record(r, req, r.todo, "oom" if is_oom(e) else "error", _reason(e))
    base = {**r.base, **model_columns(model)}
    vocab = int(model.config.get_text_config().vocab_size)
    # Everything alive now (torch, transformers, the model) leaves the collector's view, so that the
    # collection after each point scans only that point's objects: ~0.5 s less per point.
    gc.freeze()
    done = 0
    try:
        for b, p in _progress(r.todo, req.progress, base["model"]):
            if not req.admit or req.admit(b, p, r.timing):
                _finish(r, req, _point(model, r, req, base, vocab, b, p))
                done += 1
                r.dev.free()
    except KeyboardInterrupt:
        print(f"interrupted: {done} of {len(r.todo)} points saved in {r.csv_path}; the same command measures the rest",
              file=sys.stderr)
        raise
    finally:
        gc.unfreeze()
    return r.csv_path


def _point(model, r: Run, req: Request, base: dict, vocab: int, b: int, p: int) -> dict:
    """One row: the measurement, or the reason there is none."""
    row = {**base, "batch": b, "prompt": p, "status": "ok", "error": ""}
    try:
        m = measure_point(model, r.dev, vocab, b, p, req.warmup, req.timed_steps)
        row.update(m, **derived(m, r.timing, b, p, req.warmup, req.timed_steps))
    except Exception as e:  # noqa: BLE001 - an OOM is a result; anything else is recorded too
        row.update(status="oom" if is_oom(e) else "error", error=_reason(e))
    return row


def record_unmeasured(req: Request, status: str, reason: str) -> Path:
    """One row per point not yet measured, with ``status`` and ``reason``, without building the model
    (e.g. ``skipped``: the fast kernels of a layer kind are not installed)."""
    r = prepare(req)
    return _record(r, req, r.todo, status, reason)


def _record(r: Run, req: Request, points, status: str, reason: str) -> Path:
    for b, p in points:
        _finish(r, req, {**r.base, "batch": b, "prompt": p, "status": status, "error": reason})
    return r.csv_path


def _finish(r: Run, req: Request, row: dict) -> None:
    row["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _append(r.csv_path, row)
    if req.report:
        req.report(row)


def _reason(e: BaseException) -> str:
    return _one_line(e)


def _progress(items, show: bool, name: str):
    if not show:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=f"profile {name}", unit="point")


def _append(path: Path, row: dict) -> None:
    """One row, atomically (measurefile.append_row: temp file + rename) under the file's own header (a
    file begun by an older profiler keeps its columns); a row cut short before is dropped."""
    old = read_table(path) if path.exists() else None
    cols = list(old.header) if old is not None and old.header else COLUMNS
    kept = append_row(path, cols, row)
    if kept.partial_line:
        print(f"note: {path.name} ended in an unterminated row; it was dropped and that point measured again",
              file=sys.stderr)


def _write_env(csv_path: Path, dev: Device, req: Request, name: str) -> None:
    """``<csv stem>.env.json`` beside the CSV: the environment, and every command that wrote to it."""
    env_path = csv_path.with_suffix(".env.json")
    try:
        old = profiles.read_json(env_path, env_path.name) if env_path.exists() else {}
    except PlannerInputError:  # damaged: the environment is written afresh
        old = {}
    old = old if isinstance(old, dict) else {}
    commands = old.get("commands") if isinstance(old.get("commands"), list) else []
    env = {**dev.env(), "model": name, "commands": [*commands, req.command or " ".join(sys.argv)],
           "started_at": old.get("started_at", datetime.now(UTC).isoformat(timespec="seconds"))}
    env_path.write_text(json.dumps(env, indent=2, default=str) + "\n")


def summarise(csv_path: Path) -> dict:
    """What the CLI prints after a run: rows by status, and the file."""
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"csv": str(csv_path), "env": str(csv_path.with_suffix(".env.json")), "rows": len(rows), "by_status": counts}

