"""Traffic as a user states it, served by a plan: the latency a benchmark would measure.

``Traffic`` is either a closed loop (``concurrency`` clients, each sending its next request when
the last completes, as ``vllm bench serve --max-concurrency`` and genai-perf run) or an open loop
(Poisson arrivals at ``request_rate_per_s``), with prompt and output lengths drawn from a
distribution and an optional ``max_tokens`` cap. ``serve(plan, traffic)`` runs the continuous-
batching simulation (planner/simulate.py) with the plan's engine scheduler and start-up KV pool
and returns its per-request latencies: these are the headline TTFT / TPOT / end-to-end figures.
The mean-value model (``serving.evaluate``) stays as the lower bound: one prompt alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import PlannerInputError, require_positive_int
from .memory import MAX_BATCH, MAX_CONTEXT
from .serving import Plan, evaluate
from .simulate import DISTRIBUTIONS, SimResult, draw_lengths, simulate

MAX_SIM_REQUESTS = 20_000


@dataclass(frozen=True)
class Traffic:
    prompt_tokens: int                     # mean prompt length
    output_tokens: int                     # mean output length
    concurrency: int | None = None         # closed loop: clients in flight
    request_rate_per_s: float | None = None  # open loop: Poisson arrivals
    distribution: str = "fixed"            # of both lengths: fixed, uniform, exponential
    max_tokens: int | None = None          # generation stops here (the max-length cap)
    requests: int | None = None            # simulated requests (default: enough for several cycles)
    seed: int = 0

    def __post_init__(self):
        require_positive_int("prompt", self.prompt_tokens, maximum=MAX_CONTEXT)
        require_positive_int("output", self.output_tokens, maximum=MAX_CONTEXT)
        if (self.concurrency is None) == (self.request_rate_per_s is None):
            raise PlannerInputError("traffic", "give either a concurrency or a request rate",
                                    "e.g. concurrency 32 (a benchmark's clients) or rate 5 requests/s")
        if self.concurrency is not None:
            require_positive_int("concurrency", self.concurrency, maximum=MAX_BATCH)
        elif not (isinstance(self.request_rate_per_s, int | float) and 0 < self.request_rate_per_s <= 1e6):
            raise PlannerInputError("request_rate", f"must be a positive number up to 1e6, got {self.request_rate_per_s!r}",
                                    "e.g. 5")
        if self.distribution not in DISTRIBUTIONS:
            raise PlannerInputError("distribution", f"unknown distribution {self.distribution!r}",
                                    f"choose one of {', '.join(DISTRIBUTIONS)}")
        if self.max_tokens is not None:
            require_positive_int("max_tokens", self.max_tokens, maximum=MAX_CONTEXT)
        if self.requests is not None:
            require_positive_int("requests", self.requests, maximum=MAX_SIM_REQUESTS)

    def n_requests(self) -> int:
        if self.requests:
            return self.requests
        c = self.concurrency or 32
        return int(min(max(4 * c, 120), 400))

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        n = self.n_requests()
        prompts = draw_lengths(self.prompt_tokens, self.distribution, n, rng)
        outputs = draw_lengths(self.output_tokens, self.distribution, n, rng)
        if self.max_tokens:
            outputs = np.minimum(outputs, self.max_tokens)
        return prompts, outputs


def serve(plan: Plan, traffic: Traffic, stagger_fraction: float | None = None) -> SimResult:
    """The plan's engine serving ``traffic`` on one replica (continuous-batching simulation).

    A closed loop's clients start spread over ``stagger_fraction`` of one mean-value request
    latency at that concurrency: a benchmark's clients start together and drift apart, and with
    fixed lengths they stay as far apart as they started; the engine's ``stagger_fraction``
    (fitted on end-to-end runs, profiles/engines) says how far that is in the runs it was fitted on."""
    prompts, outputs = traffic.lengths()
    kv = plan.memory.kv_budget_bytes()
    if traffic.concurrency is not None:
        c = traffic.concurrency
        if stagger_fraction is None:
            stagger_fraction = plan.scheduler.stagger_fraction if plan.scheduler is not None else 1.0
        e2e = float(np.asarray(evaluate(plan, c, traffic.prompt_tokens, traffic.output_tokens)["e2e_latency_s"]))
        return simulate(plan.timing, 0, prompts, outputs, kv, profile=plan.scheduler, concurrency=c,
                        stagger_s=stagger_fraction * e2e if np.isfinite(e2e) else 0.0, seed=traffic.seed,
                        max_num_seqs=plan.memory.dep.seqs)
    return simulate(plan.timing, traffic.request_rate_per_s, prompts, outputs, kv, profile=plan.scheduler,
                    seed=traffic.seed, max_num_seqs=plan.memory.dep.seqs)
