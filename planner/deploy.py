"""A deployment completed with its serving engine's defaults, and the engine's own view of it.

``resolve(spec, gpu, dep)`` fills what the caller left to the engine (scheduler limits, memory
utilization) with the defaults of ``dep.server`` at ``dep.server_version`` (profiles/engines),
runs that engine's start-up arithmetic (planner/startup.py) for the KV pool it will allocate, and
builds its scheduler profile (planner/scheduler.py). ``api.build_plan`` calls it, so every plan,
sweep, SLO search and simulation uses the engine's pool and limits, not constants of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import kv as kvmod
from . import profiles
from .engines import Version
from .errors import PlannerInputError
from .gpus import GpuSpec
from .kv import PAGED_BLOCK_SIZE
from .memory import Deployment
from .scheduler import SchedulerProfile, profile_for
from .spec import ModelSpec
from .startup import FRACTION_SETTING, STARTUP, EngineSettings, StartupMemory, is_auto
from .startup_terms import capture_sizes


@dataclass(frozen=True)
class Resolved:
    dep: Deployment
    startup: StartupMemory | None
    scheduler: SchedulerProfile | None


def resolve(spec: ModelSpec, gpu: GpuSpec, dep: Deployment) -> Resolved:
    if dep.engine != "paged":
        return Resolved(dep, None, None)
    table = profiles.engine_table(dep.server)
    trt = dep.server == "trtllm"
    fraction = FRACTION_SETTING[dep.server]  # the Deployment's memory fraction, in the engine's own terms
    s = EngineSettings(engine=dep.server, version=dep.server_version, tp=dep.tp, pp=dep.pp, weights=dep.weights,
                       entry_point="serve" if trt else dep.entry_point,  # TensorRT-LLM has no offline-class defaults
                       kv_cache_dtype=dep.kv_dtype, max_num_seqs=dep.max_num_seqs,
                       max_num_batched_tokens=dep.max_num_batched_tokens,
                       # Deployment's block size defaults to vLLM's 16: left at it, TensorRT-LLM takes its own (32)
                       block_size=None if trt and dep.block_size == PAGED_BLOCK_SIZE else dep.block_size,
                       **{fraction: dep.gpu_memory_utilization})
    m = STARTUP[dep.server](spec, gpu, s, table, profiles.formats())
    settled = dict(m.settings)
    dep = replace(dep, gpu_memory_utilization=m.setting(fraction), max_num_batched_tokens=m.setting("max_num_batched_tokens"),
                  max_num_seqs=m.setting("max_num_seqs"), server_version=m.version,
                  block_size=settled["block_size"].value if "block_size" in settled else dep.block_size)
    kv = m.setting("kv_cache_dtype")
    if is_auto(dep.kv_dtype) or kvmod.kv_dtype(kv).bits == 8 != kvmod.kv_dtype(dep.kv_dtype).bits:
        # "auto" (or a dtype the engine overrides) is the cache the engine allocates (startup._kv_dtype: the model's
        # dtype, or the checkpoint's fp8 KV scheme where that release reads it): the whole plan takes it
        dep = replace(dep, kv_dtype=kv)
    return Resolved(dep, m, _policy(profile_for(table, m.version, dep.mnbt, dep.seqs, _graphs(dep), dep.pp), dep, table))


def _graphs(dep: Deployment) -> tuple[int, ...]:
    if dep.cuda_graph_sizes:  # the sizes the deployment captures (--cudagraph-capture-sizes / --cuda-graph-bs)
        return tuple(sorted(set(dep.cuda_graph_sizes)))
    piecewise, full = capture_sizes(dep.seqs, dep.mnbt)
    return tuple(piecewise)


ASYNC_SINCE = "0.10.0"  # vLLM's --async-scheduling: PR #19970 (merged 2025-06-23), first released in 0.10.0


def _policy(sched: SchedulerProfile, dep: Deployment, table) -> SchedulerProfile:
    """SGLang with --enable-mixed-chunk runs a prefill chunk in the decode batch's pass
    (0.5.6 srt/managers/scheduler.py, get_new_batch_prefill: ``self.is_mixed_chunk``); vLLM's
    --async-scheduling / --no-async-scheduling overrides the release's default (on from 0.14.0, off with
    pipeline parallelism before 0.17.0); a release without it, or one that refuses it with PP, is refused;
    TensorRT-LLM's batch wait holds a context batch for more tokens (PyExecutor._waiting_requests, see simulate.py)."""
    if dep.server == "trtllm" and dep.batch_wait_timeout_iters:
        return replace(sched, batch_wait_iters=dep.batch_wait_timeout_iters,
                       batch_wait_tokens=dep.batch_wait_max_tokens_ratio * dep.mnbt)
    if dep.server == "vllm" and dep.async_scheduling is not None:
        if dep.async_scheduling:
            if Version.parse(sched.version) < Version.parse(ASYNC_SINCE):
                raise PlannerInputError("async_scheduling", f"vLLM {sched.version} has no --async-scheduling (PR #19970, "
                                        f"first in {ASYNC_SINCE})", f"leave it unset, or plan vLLM {ASYNC_SINCE} or newer")
            if dep.pp > 1 and not table.resolve(sched.version)[0].get("async_scheduling_pp", True):
                raise PlannerInputError("async_scheduling", f"vLLM {sched.version} refuses --async-scheduling with "
                                        "pipeline parallelism (pp > 1)", "turn it off, use pp 1, or plan vLLM 0.17.0 or newer")
        if dep.async_scheduling != sched.async_scheduling:
            sched = replace(sched, async_scheduling=dep.async_scheduling, source=sched.source + (
                "; --async-scheduling" if dep.async_scheduling else "; --no-async-scheduling"))
    if dep.server == "sglang" and dep.enable_mixed_chunk and sched.policy == "prefill_first":
        return replace(sched, policy="mixed", source=sched.source + "; --enable-mixed-chunk: mixed")
    return sched
