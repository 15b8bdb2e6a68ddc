"""Runtime constants: memory the engines use outside the model, each named and sourced.

Values live in ``profiles/runtime.json`` as ``{"value", "source"}``; ``Runtime.from_profile``
reads them and keeps the sources for docs and the dashboard's "explain" panel.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from .errors import PlannerInputError


@dataclass(frozen=True)
class Runtime:
    cuda_context_bytes: float          # CUDA context + cuBLAS workspace outside torch's allocator
    paged_non_torch_bytes: float       # vLLM's "non_torch_memory" at start-up
    paged_cudagraph_bytes: float       # vLLM's CUDA-graph capture pool
    nccl_bytes: float                  # NCCL buffers per GPU when TP/PP > 1
    activation_factor: float = 1.0     # calibration of the activation estimate
    paged_profiles_full_budget: bool = True  # vLLM's profile run always uses max_num_batched_tokens
    sources: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_profile(cls, d: dict[str, Any]) -> Runtime:
        kw: dict[str, Any] = {}
        src = []
        for f in fields(cls):
            if f.name == "sources":
                continue
            item = d.get(f.name)
            if item is None:
                if f.default is not MISSING:
                    continue
                raise PlannerInputError(f"runtime.json:{f.name}", "missing", "add it with a source")
            if not isinstance(item, dict) or "value" not in item or not item.get("source"):
                raise PlannerInputError(f"runtime.json:{f.name}", "needs {value, source}")
            kw[f.name] = type(f.default)(item["value"]) if isinstance(f.default, bool | float) else float(item["value"])
            src.append((f.name, item["source"]))
        return cls(**kw, sources=tuple(src))
