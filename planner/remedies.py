"""What makes a plan that does not fit fit: one change at a time, each checked by the core.

vLLM's start-up check (``vllm/v1/core/kv_cache_utils.py``, ``_check_enough_kv_cache_memory``) says
what is needed, what is there, and the largest ``max_model_len`` that would fit. ``remedies`` does the
same for a ``PlanRequest``: it proposes the changes a user would try, in this order, and plans each one
(``api.plan_request``, not simulated) so that every remedy states its own fit:

- ``batch``: the largest batch that fits at this prompt + output (``MemoryModel.max_batch``);
- ``context``: the longest prompt that fits at this batch and output (``MemoryModel.max_context``);
- ``kv``: an fp8 KV cache (half of bf16's bytes per token);
- ``tp``: the smallest larger tensor-parallel degree that fits (the GPU count raised to hold it);
- ``weights``: the first smaller weight format that fits (fp8, then 4-bit AWQ).

Each remedy carries its change as the request's URL parameters (``to_params`` names), so that a front
end applies it to its own inputs and gets exactly ``remedy.request``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import PlannerInputError
from .request import PlanRequest
from .result import PlanResult

TP_STEPS = (2, 4, 8, 16)
SMALLER_WEIGHTS = ("fp8", "awq-4bit-g128")   # tried in this order: 8-bit first, 4-bit after
FP8_KV = "fp8"


@dataclass(frozen=True)
class Remedy:
    """One change (``params``: URL parameter -> new value) and the plan it gives."""

    kind: str                         # batch, context, kv, tp, weights
    label: str                        # the change in plain words
    short: str                        # the change in two or three words (a button)
    params: tuple[tuple[str, str], ...]
    request: PlanRequest
    fits: bool
    memory_total_bytes_per_gpu: float
    capacity_bytes_per_gpu: float


def _plan(req: PlanRequest) -> PlanResult:
    from . import api

    return api.plan_request(replace(req, simulate=False))


def _remedy(kind: str, label: str, req: PlanRequest, names: tuple[str, ...], short: str = "") -> Remedy | None:
    """``req`` planned; None when the core refuses it (e.g. a TP that does not split the heads)."""
    try:
        r = _plan(req)
    except PlannerInputError:
        return None
    params = req.to_params()
    return Remedy(kind, label, short or label, tuple((n, params[n]) for n in names if n in params), req, r.fits,
                  r.memory.memory_total_bytes_per_gpu, r.memory.capacity_bytes_per_gpu)


def _first_fitting(tries: list[Remedy | None]) -> Remedy | None:
    """The first candidate that fits, else the last one the core could plan (it says how close it gets)."""
    built = [t for t in tries if t is not None]
    return next((t for t in built if t.fits), built[-1] if built else None)


def _batch(req: PlanRequest, r: PlanResult) -> Remedy | None:
    b = r.memory.max_batch
    if b < 1:
        return None
    return _remedy("batch", f"batch {b:,} (the largest that fits at {_ctx(req):,} tokens)",
                   req.with_workload(batch=b), ("batch",), f"Batch {b:,}")


def _context(req: PlanRequest, r: PlanResult) -> Remedy | None:
    prompt = r.memory.max_context_tokens - req.workload.output_tokens
    if prompt < 1 or prompt >= req.workload.prompt_tokens:
        return None
    return _remedy("context", f"prompt {prompt:,} tokens (the longest that fits at batch {req.workload.batch:,})",
                   req.with_workload(prompt_tokens=prompt), ("prompt",), f"Prompt {prompt:,}")


def _kv(req: PlanRequest) -> Remedy | None:
    if req.deployment.kv_dtype == FP8_KV:
        return None
    return _remedy("kv", "fp8 KV cache (half the bytes of bf16)", req.with_deployment(kv_dtype=FP8_KV), ("kv",), "fp8 KV")


def _tp(req: PlanRequest) -> Remedy | None:
    d = req.deployment
    tries = []
    for tp in (t for t in TP_STEPS if t > d.tp):
        gpus = max(req.gpus or 1, tp * d.pp)
        try:
            more = replace(req, deployment=replace(req.deployment, tp=tp), gpus=gpus)
        except PlannerInputError:  # e.g. more GPUs than a request may name
            continue
        tries.append(_remedy("tp", f"TP={tp} ({gpus} GPUs in all)", more, ("tp", "gpus"), f"TP={tp}"))
        if tries[-1] is not None and tries[-1].fits:
            break
    return _first_fitting(tries)


def _weights(req: PlanRequest, r: PlanResult) -> Remedy | None:
    tries = []
    for fid in (f for f in SMALLER_WEIGHTS if f != req.deployment.weights):
        t = _remedy("weights", f"{fid} weights", req.with_deployment(weights=fid), ("weights",), f"{fid} weights")
        if t is None or t.memory_total_bytes_per_gpu >= r.memory.memory_total_bytes_per_gpu:
            continue  # not smaller than what the plan runs now
        tries.append(t)
        if t.fits:
            break
    return _first_fitting(tries)


def _ctx(req: PlanRequest) -> int:
    return req.workload.prompt_tokens + req.workload.output_tokens


def remedies(req: PlanRequest, result: PlanResult | None = None) -> tuple[Remedy, ...]:
    """The single changes that would make ``req`` fit, each planned (empty when it fits already).
    ``result``: ``req``'s own result when the caller has it (saves planning it again)."""
    r = result if result is not None else _plan(req)
    if r.fits:
        return ()
    found = (_batch(req, r), _context(req, r), _kv(req), _tp(req), _weights(req, r))
    return tuple(f for f in found if f is not None)
