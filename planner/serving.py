"""Serving metrics of a plan: latency, throughput and cost, as one vectorised function.

Definitions follow vLLM's ``benchmarks/benchmark_serving.py`` (docs/formulas.md):
TTFT is the time from a request's arrival to its first token; TPOT =
(end-to-end - TTFT) / (output tokens - 1); inter-token latency is the gap between two tokens,
whose mean is the TPOT here.

The mean-value model: ``batch`` requests are in flight at once (continuous batching at
concurrency ``batch``). A new request's prompt is prefilled in one pass shared with the other
``batch - 1`` sequences' decode tokens (chunked prefill); then it decodes with the batch. By
Little's law the replica completes ``batch / e2e`` requests per second.

Both the single-plan CLI and the sweep call ``evaluate``: a scalar call equals the matching
element of a vector call by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .memory import MemoryModel
from .scheduler import SchedulerProfile
from .startup import StartupMemory
from .timing import TimingModel


@dataclass(frozen=True)
class Plan:
    """A model on a GPU type under one deployment: the memory and timing reductions together, and
    for a serving engine its start-up pool and scheduler (planner/deploy.py)."""

    memory: MemoryModel
    timing: TimingModel
    provenance: str  # "datasheet" or "calibrated"
    startup: StartupMemory | None = None
    scheduler: SchedulerProfile | None = None

    @property
    def gpus_per_replica(self) -> int:
        return self.memory.dep.tp * self.memory.dep.pp

    @property
    def usd_per_hour(self) -> float:
        return self.memory.gpu.price_usd_per_hour * self.gpus_per_replica


def evaluate(plan: Plan, batch, prompt, output) -> dict[str, np.ndarray]:
    """Every metric of ``plan`` at (batch, prompt, output), broadcast over array inputs."""
    b = np.asarray(batch, dtype=float)
    p = np.asarray(prompt, dtype=float)
    o = np.asarray(output, dtype=float)
    b, p, o = np.broadcast_arrays(b, p, o)
    t = plan.timing
    mem = plan.memory.plan(b, p, o)
    avg_mem = plan.memory.plan(b, p, np.floor(o / 2))  # continuous batching: caches grow from p to p+o

    pre = t.prefill(1, p, decode_batch=b - 1, decode_context=p + o / 2)
    dec_mid = t.decode_step(b, p + o / 2)
    ttft = pre["time_s"]
    # While a request decodes, the other b-1 requests of the batch are replaced as they finish:
    # lam = (b-1) / o new prompts a decode step on average, which the engine batches into the pass they
    # arrive for (chunked prefill). Taking arrivals as Poisson, a pass carries at least one prompt with
    # probability 1 - exp(-lam), and then lam / (1 - exp(-lam)) of them on average: the interference is
    # that probability times what those prompts add to a pass of the b-1 decodes. Few arrivals (lam << 1):
    # lam x one prompt's extra pass time; many (lam >> 1): the extra time of lam x p prompt tokens in one
    # pass, the weights read once. vLLM's benchmark TPOT includes it.
    alone = t.decode_step(np.maximum(b - 1, 1), p + o / 2)["time_s"]
    lam = (b - 1) / np.maximum(o, 1)
    busy = -np.expm1(-lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_pass = np.where(lam > 0, lam / busy, 1.0)
    joined = t.prefill(per_pass, p, decode_batch=b - 1, decode_context=p + o / 2)["time_s"]
    interference = np.where(b > 1, busy * np.maximum(joined - alone, 0), 0.0)
    tpot = t.tpot(b, p, o) + interference
    e2e = ttft + np.maximum(o - 1, 0) * tpot
    # GPU time per request is e2e / b (b requests share it, Little's law); of that, the prefill's
    # own work is its share of the interference it causes (lam prompts a step add ``interference``: each
    # interference / lam), all of the TTFT when alone.
    with np.errstate(divide="ignore", invalid="ignore"):
        prefill_gpu_s = np.where(b > 1, interference / np.where(lam > 0, lam, 1.0), ttft)
    gpus = plan.gpus_per_replica
    return {
        "fits": mem["fits"], "fits_avg_occupancy": avg_mem["fits"],
        "memory_total_bytes_per_gpu": mem["total_bytes"], "weights_bytes_per_gpu": mem["weights_bytes"],
        "kv_cache_bytes_per_gpu": mem["kv_cache_bytes"], "activation_bytes_per_gpu": mem["activation_bytes"],
        "overhead_bytes_per_gpu": mem["overhead_bytes"], "capacity_bytes_per_gpu": mem["capacity_bytes"],
        "headroom_bytes_per_gpu": mem["headroom_bytes"],
        "ttft_s": ttft, "tpot_s": tpot, "prefill_interference_s": interference, "itl_s": tpot, "e2e_latency_s": e2e,
        "prefill_bound": pre["bound"], "decode_bound": dec_mid["bound"],
        "prefill_flops": pre["flops"], "prefill_bytes": pre["bytes"],
        "prefill_compute_s": pre["compute_s"], "prefill_memory_s": pre["memory_s"],
        "decode_step_flops": dec_mid["flops"], "decode_step_bytes": dec_mid["bytes"],
        "decode_step_compute_s": dec_mid["compute_s"], "decode_step_memory_s": dec_mid["memory_s"],
        "decode_achieved_bytes_per_s": dec_mid["bytes"] / dec_mid["time_s"],
        "decode_achieved_flops_per_s": dec_mid["flops"] / dec_mid["time_s"],
        "prefill_achieved_flops_per_s": pre["flops"] / pre["time_s"],
        "gpus_per_replica": np.full(b.shape, gpus), "usd_per_hour": np.full(b.shape, plan.usd_per_hour),
        "prefill_gpu_s": prefill_gpu_s,
        **rates(plan, b, p, o, e2e, tpot, prefill_gpu_s),
    }


def rates(plan: Plan, b, p, o, e2e, tpot, prefill_gpu_s, cycle_gap_s: float = 0.0) -> dict:
    """Throughput and cost of ``b`` clients in a closed loop whose requests take ``e2e`` each (Little's law: b
    requests in flight, each cycle e2e plus the client's ``cycle_gap_s`` back to its next request), priced by the
    replica's GPU-hours; the input tokens' share of the cost is the prefill's share of the GPU time, its
    ``prefill_gpu_s`` (the extra pass time one request's prompt adds) over the GPU time a request holds (cycle / b)."""
    b, p, o = (np.asarray(x, dtype=float) for x in (b, p, o))
    cycle = np.asarray(e2e, dtype=float) + cycle_gap_s
    rps = b / cycle
    prefill_share = np.clip(np.asarray(prefill_gpu_s, dtype=float) / (cycle / b), 0, 1)
    out_tps, in_tps = rps * o, rps * p
    gpus, usd_h = plan.gpus_per_replica, plan.usd_per_hour
    # a GPU without a price has no cost per token (NaN: shown as a dash / null), not a cost of $0
    price = usd_h if usd_h > 0 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        cost_out = np.where(out_tps > 0, price / (out_tps * 3600) * 1e6, np.inf)
        cost_in = np.where(in_tps > 0, price * prefill_share / (in_tps * 3600) * 1e6, np.inf)
        cost_all = price / ((out_tps + in_tps) * 3600) * 1e6
        gpu_hours_out = np.where(out_tps > 0, gpus / (out_tps * 3600) * 1e6, np.inf)
        per_user = 1.0 / np.asarray(tpot, dtype=float)
    return {"tokens_per_s_per_user": per_user,
            "output_tokens_per_s": out_tps, "output_tokens_per_s_per_gpu": out_tps / gpus,
            "input_tokens_per_s": in_tps, "requests_per_s": rps, "gpu_hours_per_1m_output_tokens": gpu_hours_out,
            "cost_usd_per_1m_output_tokens": cost_out, "cost_usd_per_1m_input_tokens": cost_in,
            "cost_usd_per_1m_tokens": cost_all, "prefill_share_of_gpu_time": prefill_share}
