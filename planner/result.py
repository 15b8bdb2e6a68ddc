"""One result: the typed answer to a ``PlanRequest`` (``api.plan_request``).

SI units inside and the unit in every field name (bytes, seconds, per_s, usd). The figures come in
groups: ``memory`` (per GPU), ``latency``, ``work`` (the roofline of one prefill and one decode
step, with the hardware figures and efficiencies it used), ``throughput`` and ``cost``.
``provenance`` says where each figure comes from (``source(name)``): a formula and its module, the
serving engine's start-up rules, a simulation, a calibration or a datasheet.

Three views of one result: ``to_row()`` is a flat numeric row for CSV (units in the column names);
``labels()`` the text that names the plan; ``as_dict()`` the dict ``api.plan`` has always returned
(same keys, same order), so that scripts reading it keep working.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from .request import PlanRequest


@dataclass(frozen=True)
class MemoryFigures:
    """Per GPU (the fullest under TP x PP), bytes; the limits found by the memory model."""

    weights_bytes_per_gpu: float
    kv_cache_bytes_per_gpu: float
    activation_bytes_per_gpu: float
    overhead_bytes_per_gpu: float
    memory_total_bytes_per_gpu: float
    capacity_bytes_per_gpu: float
    headroom_bytes_per_gpu: float
    kv_budget_bytes_per_gpu: float      # room for the KV cache: MemoryModel.kv_budget_bytes
    gpu_memory_bytes: float             # what the GPU has (before the engine's utilization)
    gpu_memory_utilization: float       # the fraction the engine may use (1 for transformers)
    capacity_bytes_per_replica: float   # capacity_bytes_per_gpu x TP x PP
    max_batch: int                      # at this prompt + output
    max_batch_avg_occupancy: int        # at prompt + output / 2 (continuous batching's mean)
    max_context_tokens: int             # at this batch
    max_context_limited_by: str         # "memory" or "model (max_position_embeddings)"
    fits_avg_occupancy: bool


@dataclass(frozen=True)
class LatencyFigures:
    """Seconds. The headline (ttft_s, tpot_s, e2e_latency_s) is simulated when ``simulated``; the
    mean-value figures stand beside it; percentiles are None when not simulated."""

    ttft_s: float
    tpot_s: float
    itl_s: float
    e2e_latency_s: float
    prefill_interference_s: float
    ttft_lower_bound_s: float
    tpot_mean_value_s: float
    e2e_mean_value_s: float
    ttft_p50_s: float | None = None
    ttft_p90_s: float | None = None
    ttft_p99_s: float | None = None
    tpot_p50_s: float | None = None
    tpot_p90_s: float | None = None
    tpot_p99_s: float | None = None
    e2e_p50_s: float | None = None
    e2e_p90_s: float | None = None
    e2e_p99_s: float | None = None
    sim_preemptions: int | None = None
    sim_requests: int | None = None

    @property
    def simulated(self) -> bool:
        return self.ttft_p50_s is not None

    def percentile(self, metric: str, q: int) -> float:
        """``metric`` (ttft, tpot, e2e) at percentile ``q``; the mean when not simulated."""
        value = getattr(self, f"{metric}_p{q}_s")
        return value if value is not None else getattr(self, "e2e_latency_s" if metric == "e2e" else f"{metric}_s")


@dataclass(frozen=True)
class WorkFigures:
    """One prefill (of this prompt, beside batch - 1 decodes) and one mid-output decode step: FLOPs,
    bytes, their compute and memory times, and the hardware figures and factors behind them."""

    prefill_flops: float
    prefill_bytes: float
    prefill_compute_s: float
    prefill_memory_s: float
    prefill_bound: str
    decode_step_flops: float
    decode_step_bytes: float
    decode_step_compute_s: float
    decode_step_memory_s: float
    decode_bound: str
    decode_achieved_bytes_per_s: float
    decode_achieved_flops_per_s: float
    prefill_achieved_flops_per_s: float
    prefill_share_of_gpu_time: float
    peak_flops_per_s: float
    compute_dtype: str
    bandwidth_bytes_per_s: float
    eff_compute: float
    eff_memory: float
    compute_factor: float
    memory_factor: float
    step_overhead_s: float
    layer_overhead_s: float
    layers_per_gpu: int


@dataclass(frozen=True)
class ThroughputFigures:
    tokens_per_s_per_user: float
    output_tokens_per_s: float            # one replica
    output_tokens_per_s_per_gpu: float
    input_tokens_per_s: float
    requests_per_s: float
    deployment_output_tokens_per_s: float  # every replica
    deployment_requests_per_s: float


@dataclass(frozen=True)
class CostFigures:
    usd_per_hour: float                    # one replica
    deployment_usd_per_hour: float
    gpu_hours_per_1m_output_tokens: float
    cost_usd_per_1m_output_tokens: float
    cost_usd_per_1m_input_tokens: float
    cost_usd_per_1m_tokens: float


GROUPS = ("memory", "latency", "work", "throughput", "cost")


@dataclass(frozen=True)
class PlanResult:
    """The answer to ``request``: fits or not (``reason`` when not), every figure, and its source."""

    request: PlanRequest
    model: str
    gpu: str
    server: str | None
    server_version: str | None
    replicas: int
    gpus_per_replica: int
    fits: bool
    reason: str
    memory: MemoryFigures
    latency: LatencyFigures
    work: WorkFigures
    throughput: ThroughputFigures
    cost: CostFigures
    latency_bands: dict[str, dict]
    provenance: dict[str, str]
    notes: tuple[str, ...] = ()  # what the user must do for the plan to hold (an engine that would not start)

    @property
    def runs(self) -> bool:
        """The engine can serve the plan: all of it fits, or the engine holds part of the batch and queues
        the rest (the latency is then the simulation's, with that queue, and so are the throughput and cost:
        what that queue sustains)."""
        return self.fits or (self.latency.simulated and self.memory.max_batch >= 1)

    def source(self, name: str) -> str:
        """Where figure ``name`` comes from: its own entry, else its group's."""
        if name in self.provenance:
            return self.provenance[name]
        for group in GROUPS:
            if name in {f.name for f in fields(getattr(self, group))}:
                return self.provenance[group]
        raise KeyError(name)

    def figures(self) -> dict[str, Any]:
        """Every figure of every group, by field name (numbers, bounds, the context limit)."""
        out: dict[str, Any] = {}
        for group in GROUPS:
            g = getattr(self, group)
            out.update({f.name: getattr(g, f.name) for f in fields(g)})
        return out

    def labels(self) -> dict[str, str]:
        """The text that names the plan (CSV's leading columns)."""
        d = self.request.deployment
        return {"model": self.model, "gpu": self.gpu, "weights": d.weights, "kv_dtype": d.kv_dtype, "engine": d.engine,
                "server": self.server or "", "server_version": self.server_version or ""}

    def to_row(self) -> dict[str, float]:
        """A flat numeric row, units in the keys: the request's counts, then every numeric figure
        (booleans as 0/1, a figure that does not apply as NaN). Text (bounds, sources) is left out."""
        wl, d = self.request.workload, self.request.deployment
        row: dict[str, float] = {"batch": wl.batch, "prompt_tokens": wl.prompt_tokens,
                                 "output_tokens": wl.output_tokens, "tp": d.tp, "pp": d.pp,
                                 "gpus": self.replicas * self.gpus_per_replica, "replicas": self.replicas,
                                 "gpus_per_replica": self.gpus_per_replica, "fits": int(self.fits)}
        for name, v in self.figures().items():
            if isinstance(v, bool):
                row[name] = int(v)
            elif v is None:
                row[name] = math.nan
            elif isinstance(v, int | float):
                row[name] = v
        for metric, b in self.latency_bands.items():
            row[f"{metric}_band_low_s"], row[f"{metric}_band_high_s"] = b["low_s"], b["high_s"]
        return row

    def as_dict(self) -> dict[str, Any]:
        """The keys and order ``api.plan`` returned before this type existed (docs/architecture.md)."""
        from .resultlegacy import as_dict

        return as_dict(self)
