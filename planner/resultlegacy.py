"""``PlanResult.as_dict``: the dict ``api.plan`` returned before ``PlanResult`` (same keys, same order).

Kept apart from planner/result.py so that the typed result reads without the history. Its keys are
a stable interface (``python -m planner plan --json``, outside scripts); the test suite checks that
``api.plan`` and ``api.plan_request(...).as_dict()`` agree key by key.
"""

from __future__ import annotations

from typing import Any

EVALUATE_KEYS = (
    ("memory", "fits"), ("memory", "fits_avg_occupancy"), ("memory", "memory_total_bytes_per_gpu"),
    ("memory", "weights_bytes_per_gpu"), ("memory", "kv_cache_bytes_per_gpu"), ("memory", "activation_bytes_per_gpu"),
    ("memory", "overhead_bytes_per_gpu"), ("memory", "capacity_bytes_per_gpu"), ("memory", "headroom_bytes_per_gpu"),
    ("latency", "ttft_s"), ("latency", "tpot_s"), ("latency", "prefill_interference_s"), ("latency", "itl_s"),
    ("latency", "e2e_latency_s"), ("work", "prefill_flops"), ("work", "prefill_bytes"), ("work", "decode_step_flops"),
    ("work", "decode_step_bytes"), ("work", "decode_achieved_bytes_per_s"), ("work", "decode_achieved_flops_per_s"),
    ("work", "prefill_achieved_flops_per_s"), ("throughput", "tokens_per_s_per_user"),
    ("throughput", "output_tokens_per_s"), ("throughput", "output_tokens_per_s_per_gpu"),
    ("throughput", "input_tokens_per_s"), ("throughput", "requests_per_s"), ("", "gpus_per_replica"),
    ("cost", "usd_per_hour"), ("cost", "gpu_hours_per_1m_output_tokens"), ("cost", "cost_usd_per_1m_output_tokens"),
    ("cost", "cost_usd_per_1m_input_tokens"), ("cost", "cost_usd_per_1m_tokens"), ("work", "prefill_share_of_gpu_time"),
)
SIMULATED_KEYS = tuple(f"{m}_p{q}_s" for m in ("ttft", "tpot", "e2e") for q in (50, 90, 99)) + ("sim_preemptions",
                                                                                                 "sim_requests")


def as_dict(r) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, name in EVALUATE_KEYS:
        out[name] = r.fits if name == "fits" else getattr(getattr(r, group) if group else r, name)
    d, wl = r.request.deployment, r.request.workload
    out.update(model=r.model, gpu=r.gpu, weights=d.weights, kv_dtype=d.kv_dtype, engine=d.engine, server=r.server,
               server_version=r.server_version, tp=d.tp, pp=d.pp, batch=wl.batch, prompt=wl.prompt_tokens,
               output=wl.output_tokens, replicas=r.replicas,
               deployment_output_tokens_per_s=r.throughput.deployment_output_tokens_per_s,
               deployment_requests_per_s=r.throughput.deployment_requests_per_s,
               deployment_usd_per_hour=r.cost.deployment_usd_per_hour, provenance=r.provenance["efficiencies"],
               bound={"prefill": r.work.prefill_bound, "decode": r.work.decode_bound},
               weight_bytes_source=r.provenance["weights_bytes_per_gpu"], max_batch=r.memory.max_batch,
               max_batch_avg_occupancy=r.memory.max_batch_avg_occupancy,
               kv_budget_bytes_per_gpu=max(r.memory.kv_budget_bytes_per_gpu, 0.0), ttft_lower_bound_s=r.latency.ttft_lower_bound_s,
               tpot_mean_value_s=r.latency.tpot_mean_value_s, e2e_mean_value_s=r.latency.e2e_mean_value_s,
               latency_source=r.provenance["latency"])
    if r.latency.simulated:
        out.update({k: getattr(r.latency, k) for k in SIMULATED_KEYS})
    out["latency_bands"] = r.latency_bands
    out["reason"] = r.reason
    out["notes"] = list(r.notes)
    out["runs"] = r.runs   # PlanResult.runs: all fits, or the engine holds part of the batch and queues the rest
    return out
