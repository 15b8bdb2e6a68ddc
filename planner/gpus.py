"""GPU specs: datasheet figures and measured ones kept apart, each with its source.

A profile (``profiles/gpus/<id>.json``) gives every figure as ``{"value", "source"}``. The
datasheet's memory label ("80 GB") is not what a program can allocate: ``measured`` holds the
total NVML reports (``nvidia-smi``'s MiB figure), and the planner uses it when present.

A user-defined GPU (``--gpu-file``, the ``--gpu-*`` flags, the dashboard's form) goes through the
same reader, ``GpuSpec.from_profile``, which checks every figure (a positive finite number below
the limit in ``LIMITS``, with a source) and names the field it refuses.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import PlannerInputError

DTYPE_FALLBACK = {  # the tensor-core peak a matmul in this dtype runs at when a GPU lacks the entry
    "fp16": ("fp16", "bf16"), "bf16": ("bf16", "fp16"), "fp8": ("fp8", "bf16", "fp16"),
    "int8": ("int8", "fp8", "bf16", "fp16"), "fp32": ("fp32", "tf32"), "fp4": ("fp4", "fp8", "bf16", "fp16"),
}
PEAK_DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4")
# upper limits a figure may take (a typo in the unit, not a future GPU, is what they catch): 10 TB of
# memory, 1 PB/s of bandwidth, 10^18 FLOP/s dense, 10^14 B/s of interconnect, $10,000 per GPU-hour
LIMITS = {"memory_bytes": 1e13, "memory_bandwidth_bytes_per_s": 1e15, "peak_flops": 1e18,
          "interconnect_bytes_per_s": 1e14, "price_usd_per_hour": 1e4}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def _value(d: Any, where: str, high: float = math.inf) -> float:
    """A ``{"value", "source"}`` figure: a positive finite number up to ``high`` with a source."""
    if not isinstance(d, dict) or "value" not in d:
        raise PlannerInputError(where, "missing a {value, source} figure", "add the figure with its source")
    raw = d["value"]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PlannerInputError(where, f"must be a number, got {_shown(raw)}", "give a positive number")
    v = float(raw)
    if not (math.isfinite(v) and v > 0):
        raise PlannerInputError(where, f"must be a positive finite number, got {_shown(raw)}", "give a positive number")
    if v > high:
        raise PlannerInputError(where, f"{v:g} is beyond the limit {high:g}", "check the unit (bytes, bytes/s, FLOP/s)")
    if not isinstance(d.get("source"), str) or not d["source"].strip():
        raise PlannerInputError(where, "has no source", "cite where the figure comes from")
    return v


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:40] + "..."


def _text(d: dict, key: str, where: str, default: str = "", limit: int = 120) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or len(v) > limit:
        raise PlannerInputError(f"{where}:{key}", f"must be text of at most {limit} characters, got {_shown(v)}")
    return v


def _section(d: dict, key: str, where: str) -> dict:
    v = d.get(key) or {}
    if not isinstance(v, dict):
        raise PlannerInputError(f"{where}:{key}", f"must be an object, got {_shown(v)}")
    return v


@dataclass(frozen=True)
class GpuSpec:
    id: str
    display_name: str
    vendor: str
    memory_bytes: float                      # datasheet label, in bytes as the vendor means it
    memory_bandwidth_bytes_per_s: float
    peak_flops: tuple[tuple[str, float], ...]  # dense tensor-core peaks per dtype
    interconnect_name: str = ""
    interconnect_bytes_per_s: float = 0.0    # one direction, per GPU
    price_usd_per_hour: float = 0.0
    nvml_total_memory_bytes: float = 0.0     # measured; 0 when nobody has read it off a card
    cuda_total_memory_bytes: float = 0.0     # measured cudaMemGetInfo total (what vLLM calls total_gpu_memory)
    unified_memory: bool = False
    nvml_names: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    user_defined: bool = False               # from --gpu-file, the --gpu-* flags or the dashboard form

    @property
    def total_memory_bytes(self) -> float:
        """What a program can allocate in all: the measured CUDA total (cudaMemGetInfo, a few hundred
        MiB below NVML's figure), else the measured NVML total, else the datasheet label."""
        return self.cuda_total_memory_bytes or self.nvml_total_memory_bytes or self.memory_bytes

    @property
    def memory_source(self) -> str:
        if self.user_defined and not (self.cuda_total_memory_bytes or self.nvml_total_memory_bytes):
            return "user-defined"
        if self.cuda_total_memory_bytes:
            return "measured (CUDA total)"
        return "measured (NVML total)" if self.nvml_total_memory_bytes else "datasheet"

    def flops(self, dtype: str) -> float:
        peaks = dict(self.peak_flops)
        for d in DTYPE_FALLBACK.get(dtype, (dtype,)):
            if d in peaks:
                return peaks[d]
        raise PlannerInputError("gpu", f"{self.id} has no {dtype} peak in its profile", "pick another compute dtype")

    def has_native(self, dtype: str) -> bool:
        return dtype in dict(self.peak_flops)

    @classmethod
    def from_profile(cls, d: Any, where: str | None = None, user_defined: bool = False) -> GpuSpec:
        """A GPU profile (the schema of profiles/gpus/*.json), every field checked; ``where`` names the
        file in errors (default ``profiles/gpus/<id>.json``)."""
        if not isinstance(d, dict):
            raise PlannerInputError(where or "gpu profile", f"must be a JSON object, got {_shown(d)}")
        gid = d.get("id")
        where = where or f"profiles/gpus/{gid}.json"
        if not isinstance(gid, str) or not _ID.fullmatch(gid):
            raise PlannerInputError(f"{where}:id", f"must be 1-64 letters, digits or . _ + -, got {_shown(gid)}",
                                    'give the GPU a short id such as "my-gpu"')
        ds, meas = _section(d, "datasheet", where), _section(d, "measured", where)
        fig = {"memory_bytes": _value(ds.get("memory_bytes"), f"{where}:memory_bytes", LIMITS["memory_bytes"]),
               "memory_bandwidth_bytes_per_s": _value(ds.get("memory_bandwidth_bytes_per_s"), f"{where}:memory_bandwidth",
                                                      LIMITS["memory_bandwidth_bytes_per_s"])}
        flops = _section(ds, "peak_flops_dense", f"{where}:datasheet")
        bad = sorted(set(flops) - set(PEAK_DTYPES))
        if bad:
            raise PlannerInputError(f"{where}:peak_flops_dense", f"unknown dtype {_shown(bad[0])}",
                                    f"use {', '.join(PEAK_DTYPES)}")
        peaks = tuple(sorted((k, _value(v, f"{where}:peak_flops_dense.{k}", LIMITS["peak_flops"]))
                             for k, v in flops.items()))
        if not peaks:
            raise PlannerInputError(where, "no dense peak FLOP/s", "add datasheet.peak_flops_dense (bf16 at least)")
        ic = _section(ds, "interconnect", f"{where}:datasheet")
        price = d.get("price_usd_per_gpu_hour")
        if ic.get("bandwidth_bytes_per_s"):
            fig["interconnect_bytes_per_s"] = _value(ic["bandwidth_bytes_per_s"], f"{where}:interconnect",
                                                     LIMITS["interconnect_bytes_per_s"])
        if price:
            fig["price_usd_per_hour"] = _value(price, f"{where}:price", LIMITS["price_usd_per_hour"])
        for key, short in (("nvml_total_memory_bytes", "nvml_total"), ("cuda_total_memory_bytes", "cuda_total")):
            if meas.get(key):
                fig[key] = _value(meas[key], f"{where}:{short}", LIMITS["memory_bytes"])
        sources = [("memory_bytes", ds["memory_bytes"]["source"]),
                   ("memory_bandwidth_bytes_per_s", ds["memory_bandwidth_bytes_per_s"]["source"])]
        sources += [(f"peak_flops.{k}", flops[k]["source"]) for k, _ in peaks]
        if "interconnect_bytes_per_s" in fig:
            sources.append(("interconnect_bytes_per_s", ic["bandwidth_bytes_per_s"]["source"]))
        if "price_usd_per_hour" in fig:
            sources.append(("price_usd_per_hour", price["source"]))
        sources += [(k, meas[k]["source"]) for k in ("nvml_total_memory_bytes", "cuda_total_memory_bytes") if k in fig]
        names = d.get("nvml_names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) and len(n) <= 120 for n in names):
            raise PlannerInputError(f"{where}:nvml_names", "must be a list of names", 'e.g. ["NVIDIA H100 80GB HBM3"]')
        unified = d.get("unified_memory", False)
        if not isinstance(unified, bool):
            raise PlannerInputError(f"{where}:unified_memory", f"must be true or false, got {_shown(unified)}")
        return cls(id=gid, display_name=_text(d, "display_name", where, gid), vendor=_text(d, "vendor", where),
                   peak_flops=peaks, interconnect_name=_text(ic, "name", f"{where}:interconnect"),
                   unified_memory=unified, nvml_names=tuple(names), sources=tuple(sources),
                   user_defined=user_defined, **fig)


def user_gpu(memory_gib: float, bandwidth_tbs: float, bf16_tflops: float, fp8_tflops: float | None = None,
             price_usd_per_hour: float | None = None, gpu_id: str = "user-gpu", where: str = "--gpu-*") -> GpuSpec:
    """A GPU from five figures (GiB = 2^30 B of memory a program can use, TB/s = 10^12 B/s, dense
    TFLOPS = 10^12 FLOP/s, $ per GPU-hour), marked user-defined. The figures go through
    ``GpuSpec.from_profile`` like a bundled profile; each one's source says who gave it."""
    src = f"user-defined ({where})"
    flops = {"bf16": {"value": bf16_tflops * 1e12, "source": src}, "fp16": {"value": bf16_tflops * 1e12, "source": src}}
    if fp8_tflops:
        flops["fp8"] = {"value": fp8_tflops * 1e12, "source": src}
    d = {"id": gpu_id, "display_name": f"{gpu_id} (user-defined)", "vendor": "user-defined",
         "datasheet": {"memory_bytes": {"value": memory_gib * 2**30, "source": src},
                       "memory_bandwidth_bytes_per_s": {"value": bandwidth_tbs * 1e12, "source": src},
                       "peak_flops_dense": flops}}
    if price_usd_per_hour:
        d["price_usd_per_gpu_hour"] = {"value": price_usd_per_hour, "source": src}
    return GpuSpec.from_profile(d, where=where, user_defined=True)
