"""How a serving engine batches requests, per engine and version: the simulation's rules.

``SchedulerProfile`` holds what the continuous-batching simulation (planner/simulate.py) needs:
the token budget of a step, the cap on running requests, whether prefill chunks ride with decodes
in one forward pass (vLLM V1, TensorRT-LLM) or run as batches of their own (SGLang), how KV memory
is reserved at admission (incrementally, or for the whole request as TensorRT-LLM's
GUARANTEED_NO_EVICT does), the CUDA-graph batch sizes decode steps are padded to, and the fixed
costs per step and per request that measurements show and a roofline misses. The rules and their
sources live in ``profiles/engines/<engine>.json`` (era rule ``scheduler_policy``); the fixed costs
are fitted on published end-to-end runs (``constants``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .engines import EngineTable
from .errors import PlannerInputError

POLICIES = ("mixed", "prefill_first")
# The engine costs fitted end to end (planner/fit_e2e.py), read from the engine table's constants
FITTED_COSTS = ("request_overhead_s", "eager_layer_overhead_s", "step_overhead_s", "prefill_token_layer_s",
                "allreduce_spread", "return_gap_s", "sequence_step_s")
RESERVATIONS = ("incremental", "whole_request", "new_token_ratio")


@dataclass(frozen=True)
class SchedulerProfile:
    engine: str
    version: str
    token_budget: int                # tokens per forward pass (vLLM max_num_batched_tokens, SGLang chunked_prefill_size)
    max_num_seqs: int                # running requests at most
    policy: str = "mixed"            # mixed: decodes first, then prefill chunks, in one pass; prefill_first: SGLang
    reservation: str = "incremental"  # KV admission: grow as tokens come, the whole prompt + output up front
                                      # (TensorRT-LLM), or SGLang's new_token_ratio estimate (planner/simulate.py)
    graph_sizes: tuple[int, ...] = ()  # decode-only steps are padded up to the next of these (CUDA graphs)
    step_overhead_s: float = 0.0     # per forward pass: scheduling, sampling, graph launch (fitted); a pass pays
                                     # it only when scheduling is synchronous (``async_scheduling`` off)
    request_overhead_s: float = 0.0  # per request: HTTP, tokenization, detokenization, added to TTFT (fitted)
    eager_layer_overhead_s: float = 0.0  # per layer of a pass larger than every CUDA graph (fitted)
    eager_overlaps: bool = True      # eager launches overlap the GPU's work (chosen by the fit)
    prefill_token_layer_s: float = 0.0  # per prompt token and layer at TP 1, split across ranks (fitted)
    allreduce_spread: float = 0.0    # the TP ranks' spread at an all-reduce, a fraction of the decode work (fitted)
    return_gap_s: float = 0.0        # closed loop: the mean time from a completion to the client's next request
                                     # reaching the scheduler (fitted)
    sequence_step_s: float = 0.0     # per running sequence, added to every pass it decodes in: the engine's own
                                     # per-request work each step (output processing, streaming), fitted
    batch_wait_iters: int = 0        # TensorRT-LLM batch_wait_timeout_iters: steps a context batch may be held
    batch_wait_tokens: float = 0.0   # ... until its tokens + the decodes reach this (batch_wait_max_tokens_ratio x budget)
    async_scheduling: bool = False   # vLLM: the next step is scheduled while the GPU runs this one (the per-pass
                                     # CPU cost is hidden); engines without the setting pay the per-pass cost
    source: str = ""
    rules_of: str = ""               # the release whose rules apply when ``version`` is newer than the table knows

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise PlannerInputError("scheduler_policy", f"unknown policy {self.policy!r}", f"choose one of {POLICIES}")
        if self.reservation not in RESERVATIONS:
            raise PlannerInputError("kv_reservation", f"unknown reservation {self.reservation!r}",
                                    f"choose one of {RESERVATIONS}")
        if self.token_budget < 1 or self.max_num_seqs < 1:
            raise PlannerInputError("scheduler", "token budget and max_num_seqs must be positive")
        if self.batch_wait_iters < 0 or self.batch_wait_tokens < 0:
            raise PlannerInputError("batch_wait", "the batch wait cannot be negative", "give 0 (off) or more")

    @property
    def exposed_step_s(self) -> float:
        """The per-pass cost a forward pass waits for: none when the scheduler runs a step ahead of the GPU
        (vLLM's async scheduling overlaps scheduling, input preparation and sampling with the forward pass:
        PR #19970, PR #23569), the fitted ``step_overhead_s`` when it runs between passes."""
        return 0.0 if self.async_scheduling else self.step_overhead_s

    def padded(self, decode_batch: int) -> int:
        """The batch a decode-only step runs at: the smallest CUDA-graph size that holds it."""
        for s in self.graph_sizes:
            if s >= decode_batch:
                return s
        return decode_batch


def async_default(era, pp: int = 1) -> bool | None:
    """Whether the release of ``era`` schedules a step ahead by default (vLLM: on from 0.14.0, kept off with
    pipeline parallelism until 0.17.0, profiles/engines/vllm.json); None for an engine without the setting."""
    if era.get("async_scheduling") is None:
        return None
    return bool(era["async_scheduling"]) and (pp == 1 or bool(era.get("async_scheduling_pp", True)))


def profile_for(table: EngineTable, version: str | None, token_budget: int, max_num_seqs: int,
                graph_sizes: tuple[int, ...] = (), pp: int = 1) -> SchedulerProfile:
    """The scheduler profile of ``table``'s engine at ``version`` with the given limits (``pp``: pipeline
    stages, with which vLLM turns its default async scheduling off before 0.17.0)."""
    era, v, _ = table.resolve(version)
    policy = era.rule("scheduler_policy")
    pol = policy.value
    consts = dict(table.constants)
    fitted = {k: consts.get(k) for k in FITTED_COSTS}
    src = f"{era.label}: {policy.source}" + "".join(f"; {k}: {r.source}" for k, r in fitted.items() if r)
    val = {k: float(r.value) for k, r in fitted.items() if r}
    if consts.get("eager_overlaps") is not None:
        val["eager_overlaps"] = bool(consts["eager_overlaps"].value)
    if async_default(era, pp) is not None:
        val["async_scheduling"] = async_default(era, pp)
    return SchedulerProfile(table.engine, str(v), int(token_budget), int(max_num_seqs), pol["policy"],
                            pol.get("reservation", "incremental"), tuple(graph_sizes) if pol.get("cuda_graph_padding") else (),
                            source=src, rules_of=str(table.newest) if v > table.newest else "", **val)
