"""GPU specs: datasheet figures and measured ones kept apart, each with its source.

A profile (``profiles/gpus/<id>.json``) gives every figure as ``{"value", "source"}``. The
datasheet's memory label ("80 GB") is not what a program can allocate: ``measured`` holds the
total NVML reports (``nvidia-smi``'s MiB figure), and the planner uses it when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import PlannerInputError

DTYPE_FALLBACK = {  # the tensor-core peak a matmul in this dtype runs at when a GPU lacks the entry
    "fp16": ("fp16", "bf16"), "bf16": ("bf16", "fp16"), "fp8": ("fp8", "bf16", "fp16"),
    "int8": ("int8", "fp8", "bf16", "fp16"), "fp32": ("fp32", "tf32"), "fp4": ("fp4", "fp8", "bf16", "fp16"),
}


def _value(d: Any, where: str) -> float:
    if not isinstance(d, dict) or "value" not in d:
        raise PlannerInputError(where, "missing a {value, source} figure", "add the figure with its source")
    v = float(d["value"])
    if not v > 0:
        raise PlannerInputError(where, f"must be positive, got {v}")
    if not d.get("source"):
        raise PlannerInputError(where, "has no source", "cite where the figure comes from")
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

    @property
    def total_memory_bytes(self) -> float:
        """What a program can allocate in all: the measured CUDA total (cudaMemGetInfo, a few hundred
        MiB below NVML's figure), else the measured NVML total, else the datasheet label."""
        return self.cuda_total_memory_bytes or self.nvml_total_memory_bytes or self.memory_bytes

    @property
    def memory_source(self) -> str:
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
    def from_profile(cls, d: dict[str, Any]) -> GpuSpec:
        gid = d.get("id") or "?"
        ds = d.get("datasheet") or {}
        where = f"profiles/gpus/{gid}.json"
        peaks = tuple(sorted((k, _value(v, f"{where}:peak_flops_dense.{k}"))
                             for k, v in (ds.get("peak_flops_dense") or {}).items()))
        if not peaks:
            raise PlannerInputError(where, "no dense peak FLOP/s", "add datasheet.peak_flops_dense")
        ic = ds.get("interconnect") or {}
        meas = d.get("measured") or {}
        price = d.get("price_usd_per_gpu_hour")
        sources = [("memory_bytes", ds["memory_bytes"]["source"]),
                   ("memory_bandwidth_bytes_per_s", ds["memory_bandwidth_bytes_per_s"]["source"])]
        sources += [(f"peak_flops.{k}", ds["peak_flops_dense"][k]["source"]) for k, _ in peaks]
        if ic.get("bandwidth_bytes_per_s"):
            sources.append(("interconnect_bytes_per_s", ic["bandwidth_bytes_per_s"]["source"]))
        if price:
            sources.append(("price_usd_per_hour", price["source"]))
        for key in ("nvml_total_memory_bytes", "cuda_total_memory_bytes"):
            if meas.get(key):
                sources.append((key, meas[key]["source"]))
        return cls(
            id=gid, display_name=d.get("display_name", gid), vendor=d.get("vendor", ""),
            memory_bytes=_value(ds.get("memory_bytes"), f"{where}:memory_bytes"),
            memory_bandwidth_bytes_per_s=_value(ds.get("memory_bandwidth_bytes_per_s"), f"{where}:memory_bandwidth"),
            peak_flops=peaks, interconnect_name=ic.get("name", ""),
            interconnect_bytes_per_s=_value(ic["bandwidth_bytes_per_s"], f"{where}:interconnect") if ic.get("bandwidth_bytes_per_s") else 0.0,
            price_usd_per_hour=_value(price, f"{where}:price") if price else 0.0,
            nvml_total_memory_bytes=_value(meas["nvml_total_memory_bytes"], f"{where}:nvml_total")
            if meas.get("nvml_total_memory_bytes") else 0.0,
            cuda_total_memory_bytes=_value(meas["cuda_total_memory_bytes"], f"{where}:cuda_total")
            if meas.get("cuda_total_memory_bytes") else 0.0,
            unified_memory=bool(d.get("unified_memory", False)), nvml_names=tuple(d.get("nvml_names") or ()),
            sources=tuple(sources),
        )
