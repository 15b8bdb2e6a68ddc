"""Traffic as a user states it, served by a plan: the latency a benchmark would measure.

``Traffic`` is either a closed loop (``concurrency`` clients, each sending its next request when
the last completes, as ``vllm bench serve --max-concurrency``, genai-perf and aiperf run) or an open
loop (Poisson arrivals at ``request_rate_per_s``), with prompt and output lengths drawn from a
distribution and an optional ``max_tokens`` cap.

A closed loop is simulated as such a benchmark runs it: the clients' first requests leave together
(aiperf's concurrency mode issues credits "as soon as possible, up to max concurrency", and its
profiling phase starts only once the warm-up's requests have all returned: ai-dynamo/aiperf
@db4f639, aiperf/timing/request_rate_strategy.py and credit_issuing_strategy.py ``_execute_phases``),
``ROUNDS`` requests per client are sent, and every one of them is measured, as the benchmark's
report averages them. With fixed lengths the engine then keeps the clients in the step it admitted
them in, so queueing at the start of the run shows in the mean. An open loop is measured on the
middle 80 % of its requests by arrival (its warm-up and drain left out). ``serve(plan, traffic)`` runs the continuous-
batching simulation (planner/simulate.py) with the plan's engine scheduler and start-up KV pool
and returns its per-request latencies: these are the headline TTFT / TPOT / end-to-end figures.
The mean-value model (``serving.evaluate``) stays as the lower bound: one prompt alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kv as kvmod
from .errors import PlannerInputError, require_positive_int
from .memory import MAX_BATCH, MAX_CONTEXT
from .serving import Plan
from .simulate import DISTRIBUTIONS, SimResult, draw_lengths, simulate

MAX_SIM_REQUESTS = 20_000
ROUNDS = 20  # requests per client in a closed loop (aiperf's --num-requests = concurrency x 20 in
             # aiconfigurator's benchmark template, generator/config/backend_templates/benchmark/bench_run.sh.j2)
MAX_CLOSED_LOOP_REQUESTS = 4_000


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
        if self.concurrency is not None:  # ROUNDS per client, fewer above 200 clients (simulation time)
            return int(min(max(ROUNDS * self.concurrency, 120), MAX_CLOSED_LOOP_REQUESTS))
        return 400

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        n = self.n_requests()
        prompts = draw_lengths(self.prompt_tokens, self.distribution, n, rng)
        outputs = draw_lengths(self.output_tokens, self.distribution, n, rng)
        if self.max_tokens:
            outputs = np.minimum(outputs, self.max_tokens)
        return prompts, outputs


def serve(plan: Plan, traffic: Traffic) -> SimResult:
    """The plan's engine serving ``traffic`` on one replica (continuous-batching simulation)."""
    prompts, outputs = traffic.lengths()
    return serve_lengths(plan, prompts, outputs, concurrency=traffic.concurrency,
                         rate_per_s=traffic.request_rate_per_s, seed=traffic.seed, max_tokens=traffic.max_tokens)


def serve_lengths(plan: Plan, prompts: np.ndarray, outputs: np.ndarray, concurrency: int | None = None,
                  rate_per_s: float | None = None, seed: int = 0, max_tokens: int | None = None,
                  measure: str | None = None, max_queue: int | None = None) -> SimResult:
    """``serve`` of requests whose lengths are given (a benchmark's own draw, planner/validate_e2e.py):
    a closed loop of ``concurrency`` clients, every request measured, or Poisson arrivals at ``rate_per_s``
    measured on the middle 80 % (``measure`` "all": every one, as a benchmark's report counts them;
    ``max_queue``: simulate.simulate's)."""
    kv = plan.memory.kv_budget_bytes()
    if concurrency is not None:
        return simulate(plan.timing, 0, prompts, outputs, kv, profile=plan.scheduler, concurrency=concurrency,
                        seed=seed, max_num_seqs=plan.memory.dep.seqs, measure=measure or "all", max_tokens=max_tokens,
                        max_queue=max_queue)
    return simulate(plan.timing, rate_per_s, prompts, outputs, kv, profile=plan.scheduler, seed=seed,
                    max_num_seqs=plan.memory.dep.seqs, max_tokens=max_tokens, measure=measure or "middle",
                    max_queue=max_queue)


def stopping_example(plan: Plan, prompt: int, output: int, concurrency: int, max_tokens: int) -> dict:
    """How decoding stops, in numbers: the same closed loop with exponential prompt and output lengths
    (means ``prompt`` and ``output``), once run to EOS (the drawn length) and once capped at
    ``max_tokens``. The cap cuts the long tail, so p99 end-to-end falls much more than p50; and an
    engine that reserves KV whole (TensorRT-LLM) holds prompt + max_tokens per request, whatever the
    output turns out to be. Bytes are per GPU (the plan's KV groups are split over TP)."""
    out: dict = {}
    for label, cap in (("eos", None), ("capped", max_tokens)):
        t = Traffic(prompt, output, concurrency=concurrency, distribution="exponential", max_tokens=cap)
        r = serve(plan, t)
        outputs = t.lengths()[1]
        out[label] = {"e2e_p50_s": r.percentile("e2e", 50), "e2e_p99_s": r.percentile("e2e", 99),
                      "output_mean_tokens": float(outputs.mean()), "output_max_tokens": int(outputs.max()),
                      "capped_share": float(np.mean(outputs >= max_tokens)) if cap else 0.0}
    per_token = kvmod.kv_bytes_per_token(plan.timing.kv_groups)
    out["kv_bytes_per_token"] = per_token
    out["reserved_bytes_per_request"] = (prompt + max_tokens) * per_token
    out["mean_used_bytes_per_request"] = (prompt + out["capped"]["output_mean_tokens"]) * per_token
    return out
