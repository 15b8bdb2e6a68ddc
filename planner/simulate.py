"""A small discrete-event simulation of continuous batching, for latency percentiles.

What it models (vLLM V1's scheduler, ``vllm/v1/core/sched/scheduler.py``):

* Requests arrive as a Poisson process; prompt and output lengths are drawn per request.
* Every engine step has a token budget (``max_num_batched_tokens``): running requests that are
  decoding take one token each first, then prefill chunks of admitted requests, then new
  requests from the queue (first come, first served) while the budget, ``max_num_seqs`` and
  the KV cache allow. Prefill and decode share the step (chunked prefill).
* A request's KV cache grows as it decodes. When the cache is full, the most recently admitted
  request is preempted: its cache is freed and it goes back to the head of the queue to be
  prefilled again (vLLM's recompute preemption).
* The duration of a step is the timing model's forward pass (``TimingModel.step``) for that
  step's decode batch, mean decode context and prefill chunk.
* With vLLM's async scheduling (``SchedulerProfile.async_scheduling``, on from 0.14.0) the scheduler
  runs one step ahead: pass n+1 is scheduled when pass n is launched (``EngineCore.step_with_batch_queue``,
  a batch queue of two), so a request that arrives while pass n runs is first scheduled into pass n+2.
  An idle engine schedules a request as it arrives. (The price of hiding the scheduler's CPU work; PR
  #19970: TPOT falls, TTFT rises slightly.)

Between events (an arrival, a completion, a prefill) the batch is constant, so runs of pure
decode steps are advanced together, at the step time of the run's middle context: the cost is
a few operations per request, not per token, which is what lets the SLO search simulate many
candidates.

The mean-value model in ``serving.evaluate`` is its cross-check: at a light load the simulated
TTFT and TPOT equal the analytic ones, and Little's law holds (tests/test_simulate.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kv as kvmod
from .errors import PlannerInputError, require_positive_int
from .scheduler import SchedulerProfile
from .timing import TimingModel

DISTRIBUTIONS = ("fixed", "uniform", "exponential", "spread")
# SGLang's admission (reservation "new_token_ratio", profiles/engines/sglang.json): a running request holds
# back min(remaining output, CLIP_MAX_NEW) x new_token_ratio tokens of the pool; the ratio starts at
# 0.7, falls by (0.7 - 0.7 x 0.14) / 600 per decode step to 0.098, and after a retraction is re-estimated
# as (tokens decoded + 20 per request) / max_new_tokens of the requests left (SGLang v0.4.9
# python/sglang/global_config.py default_init_new_token_ratio 0.7, default_min_new_token_ratio_factor
# 0.14, default_new_token_ratio_decay_steps 600, retract_decode_steps 20; srt/managers/schedule_policy.py
# CLIP_MAX_NEW_TOKENS_ESTIMATION 4096; srt/managers/schedule_batch.py retract_decode)
RATIO_INIT = 0.7
RATIO_MIN = RATIO_INIT * 0.14
RATIO_DECAY = (RATIO_INIT - RATIO_MIN) / 600
RETRACT_DECODE_STEPS = 20
CLIP_MAX_NEW = 4096


def draw_lengths(mean: int, distribution: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` lengths with the given mean: fixed; uniform on [1, 2 mean - 1]; exponential, clipped to [1, 8 mean];
    spread: whole numbers uniform on [mean - mean // 10, mean + mean // 10], the relative spread of the
    benchmark the plan's latency is validated on (InferenceX's [0.8 L, L]: +-11 % around its mean 0.9 L,
    planner/validate_e2e.py ``HARNESS``), so clients that start together drift apart as real ones do."""
    mean = require_positive_int("length", mean)
    if distribution == "fixed":
        return np.full(n, mean, dtype=np.int64)
    if distribution == "uniform":
        return rng.integers(1, 2 * mean, size=n, endpoint=False).astype(np.int64) if mean > 1 else np.ones(n, np.int64)
    if distribution == "exponential":
        return np.clip(np.rint(rng.exponential(mean, size=n)), 1, 8 * mean).astype(np.int64)
    if distribution == "spread":
        lo, hi = _spread(mean)
        return rng.integers(lo, hi, size=n, endpoint=True).astype(np.int64)
    raise PlannerInputError("distribution", f"unknown length distribution {distribution!r}",
                            f"choose one of {', '.join(DISTRIBUTIONS)}")


def _spread(mean: int) -> tuple[int, int]:
    return max(1, mean - mean // 10), mean + mean // 10


def capped_mean(mean: int, distribution: str, cap: int | None) -> float:
    """Mean of ``draw_lengths(mean, distribution)`` truncated at ``cap`` tokens (generation stops at
    max_tokens), for the mean-value model. fixed: min(mean, cap); uniform on the N = 2 mean - 1 whole
    numbers 1..N: (c (c + 1) / 2 + (N - c) c) / N for c < N; exponential: the continuous
    E[min(X, c')] = mean (1 - exp(-c' / mean)) with c' = min(cap, 8 mean) (the rounding to whole
    tokens and the floor of 1 left out: under 1 token).

    Example: uniform, mean 4 (1..7), cap 3: (3 x 4 / 2 + 4 x 3) / 7 = 18 / 7 = 2.571 tokens.
    """
    if cap is None:
        return float(mean)
    if distribution == "fixed":
        return float(min(mean, cap))
    if distribution == "uniform":
        n = 2 * mean - 1
        return float(mean) if cap >= n else (cap * (cap + 1) / 2 + (n - cap) * cap) / n
    if distribution == "exponential":
        c = min(cap, 8 * mean)
        return float(mean * -np.expm1(-c / mean))
    if distribution == "spread":  # uniform on the N = hi - lo + 1 whole numbers lo..hi
        lo, hi = _spread(mean)
        if cap >= hi:
            return float(mean)
        if cap < lo:
            return float(cap)
        return ((lo + cap) * (cap - lo + 1) / 2 + (hi - cap) * cap) / (hi - lo + 1)
    raise PlannerInputError("distribution", f"unknown length distribution {distribution!r}",
                            f"choose one of {', '.join(DISTRIBUTIONS)}")


@dataclass
class SimResult:
    ttft_s: np.ndarray      # per measured request (the middle 80 % by arrival, or all: ``measure``)
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    duration_s: float
    completed: int
    mean_running: float     # time-average number of requests in the engine (decoding or prefilling)
    mean_queue: float       # time-average number waiting
    preemptions: int
    steps: int
    stable: bool            # False when the queue grew without bound (arrivals beyond capacity)

    def percentile(self, metric: str, q: float) -> float:
        arr = getattr(self, f"{metric}_s")
        return float(np.percentile(arr, q)) if arr.size else float("inf")

    @property
    def throughput_requests_per_s(self) -> float:
        return self.completed / self.duration_s if self.duration_s else 0.0


def simulate(timing: TimingModel, rate_per_s: float, prompts: np.ndarray, outputs: np.ndarray,
             kv_capacity_bytes: float, max_num_seqs: int = 256, max_num_batched_tokens: int | None = None,
             seed: int = 0, max_queue: int | None = None, concurrency: int | None = None,
             profile: SchedulerProfile | None = None, measure: str = "middle",
             max_tokens: int | None = None) -> SimResult:
    """Serve ``len(prompts)`` requests arriving at ``rate_per_s`` on one replica; per-request latencies.

    ``concurrency``: a closed loop instead (what serving benchmarks run with ``--max-concurrency``):
    ``concurrency`` clients, each sending its next request when the last completes; ``rate_per_s``
    is then ignored. The clients' first requests arrive together, as a benchmark's do.

    ``profile``: the engine's scheduler (planner/scheduler.py); default vLLM V1's rules with
    ``max_num_seqs`` and ``max_num_batched_tokens``. ``kv_capacity_bytes``: KV cache room per GPU
    (the engine's start-up pool). ``max_queue``: stop and report unstable when more requests than
    this wait at once (default 20 x max_num_seqs). ``measure``: which requests the latencies are
    taken over: "middle" (the middle 80 % by arrival: no warm-up or drain) or "all" (every request,
    as a benchmark's report averages them). ``max_tokens``: the requests' max-length cap: no output
    runs past it, and an engine that reserves a request's KV whole at admission (TensorRT-LLM's
    GUARANTEED_NO_EVICT) reserves prompt + max_tokens, since it cannot know where EOS will come;
    without a cap it reserves prompt + the realised output (a client that sets max_tokens to it).
    """
    if measure not in ("middle", "all"):
        raise PlannerInputError("measure", f"unknown measure {measure!r}", "choose middle or all")
    n = len(prompts)
    require_positive_int("requests", n)
    rng = np.random.default_rng(seed)
    if profile is not None:
        max_num_seqs, max_num_batched_tokens = profile.max_num_seqs, profile.token_budget
    if concurrency is not None:
        c = min(require_positive_int("concurrency", concurrency), n)
        arrivals = np.full(n, np.inf)
        arrivals[:c] = 0.0
        issued = c
    else:
        if not rate_per_s > 0:
            raise PlannerInputError("request_rate", f"must be positive, got {rate_per_s}", "give requests per second > 0")
        arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, size=n))
        issued = n
    prompts = np.asarray(prompts, dtype=np.int64)
    outputs = np.maximum(np.asarray(outputs, dtype=np.int64), 1)
    if max_tokens is not None:
        outputs = np.minimum(outputs, require_positive_int("max_tokens", max_tokens))
    # what a whole-request reservation holds: prompt + max_tokens, or the output when no cap is known
    reserve = prompts + (np.full(n, max_tokens, dtype=np.int64) if max_tokens is not None else outputs)
    budget_tokens = max_num_batched_tokens or timing.dep.mnbt
    if timing.dep.engine != "paged":
        budget_tokens = 1 << 30  # no chunking: a prompt is prefilled in one pass
    prefill_first = profile is not None and profile.policy == "prefill_first"
    whole = profile is not None and profile.reservation == "whole_request"
    by_ratio = profile is not None and profile.reservation == "new_token_ratio"
    ratio = RATIO_INIT  # SGLang's new_token_ratio (see RATIO_INIT)
    wait_iters = profile.batch_wait_iters if profile is not None else 0
    wait_tokens = profile.batch_wait_tokens if profile is not None else 0.0
    waited = 0  # steps the held context batch has waited (TensorRT-LLM's batch_wait_iters_count)
    step_extra = 0.0  # the engine's fixed costs are in the timing model (api.build_plan folds them in)
    # the request cost (fitted, a mean) is on the client's clock: added to TTFT and end to end. In a closed loop a
    # client's next request also reaches the engine some time after its last one ended (``return_gap_s``, fitted):
    # the last chunk back to the client, its next HTTP request, the server's tokenization and the hand-over to the
    # scheduler, which takes new requests only between passes (vLLM V1 EngineCoreProc.run_busy_loop: "Poll the
    # input queue", then "Step the engine core"). The gap moves the arrival the engine sees, not the client's
    # clock; it is drawn per request from the exponential distribution with its mean (the most even spread a
    # non-negative time with a known mean can have): clients that finish within the gap of each other come back
    # together and queue behind each other
    extra = profile.request_overhead_s if profile is not None else 0.0
    gap = profile.return_gap_s if profile is not None else 0.0
    back = gap * np.random.default_rng(seed + 1).standard_exponential(n)
    pad = profile.padded if profile is not None else (lambda b: b)
    # vLLM's async scheduling schedules pass n+1 when pass n is launched (EngineCore.step_with_batch_queue with a
    # batch queue of 2), so a request that arrives while pass n runs joins pass n+2: it may join a pass only if it
    # arrived before the pass ahead of it started (``scheduled_at``), or when the engine was idle
    ahead = profile is not None and profile.async_scheduling
    scheduled_at = 0.0
    max_queue = max_queue or 20 * max_num_seqs
    # one pass's seconds (TimingModel.step_time_s; a stub with only ``step`` is read through it)
    step_s = getattr(timing, "step_time_s", None) or (lambda b, c, pt=0, pc=0, sequences=None:
                                                      float(timing.step(b, c, pt, pc)["time_s"]))
    groups, eng, bs = timing.kv_groups, timing.dep.engine, timing.dep.block_size
    mnbt = timing.dep.mnbt

    def kv_bytes(ctx: np.ndarray) -> float:
        return float(np.sum(kvmod.kv_cache_bytes(groups, 1, ctx, eng, bs, mnbt))) if len(ctx) else 0.0

    per_token = max(kvmod.kv_bytes_per_token(groups), 1e-9)
    # a request whose whole context is more than the pool can never finish: the engine would preempt it and
    # recompute its prompt for ever, a token gained each time. A real engine refuses to start instead when its
    # max_model_len does not fit the pool (vLLM v0.11.0 vllm/v1/core/kv_cache_utils.py check_enough_kv_cache_memory;
    # SGLang caps max_total_num_tokens, TensorRT-LLM rejects the request), so no finite latency is the answer
    if kv_capacity_bytes <= 0:
        raise PlannerInputError("kv_capacity", f"the engine's start-up pool is {kv_capacity_bytes / 2**30:.2f} GiB: the "
                                "weights and the engine's reserve leave no room for a KV cache",
                                "add GPUs (TP), quantize the weights, or raise the memory the engine may use")
    longest = int(np.argmax(np.maximum(prompts + outputs, reserve)))
    longest_bytes = kv_bytes(np.asarray([max(int(prompts[longest] + outputs[longest]), int(reserve[longest]))]))
    if longest_bytes > kv_capacity_bytes:
        raise PlannerInputError(
            "kv_capacity", f"the longest request simulated ({int(prompts[longest]):,} prompt + {int(outputs[longest]):,} "
            f"output tokens) needs "
            f"{longest_bytes / 2**30:.2f} GiB of KV cache; the engine's pool holds {kv_capacity_bytes / 2**30:.2f} GiB",
            "shorten the prompt or the output, quantize the weights or the KV cache, or add GPUs (TP)")

    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    done_tokens = np.zeros(n, dtype=np.int64)   # output tokens produced so far
    prefilled = np.zeros(n, dtype=np.int64)     # tokens of (prompt + produced) cached so far
    need = prompts.copy()                      # tokens to prefill before decoding (grows on preemption)
    queue: list[int] = []
    running: list[int] = []                     # admission order
    nxt = 0
    t = 0.0
    steps = preemptions = 0
    area_run = area_queue = 0.0
    stable = True
    waiting_at = [0, 0]  # queue length when the middle and the last request arrive

    def advance(dt: float) -> None:
        nonlocal t, area_run, area_queue
        area_run += dt * len(running)
        area_queue += dt * len(queue)
        t += dt

    def preempt_newest() -> None:
        nonlocal preemptions, ratio
        if len(running) == 1:  # alone and still out of room: re-admitting it would repeat this step for ever
            raise PlannerInputError("kv_capacity", f"the KV cache ({kv_capacity_bytes / 2**30:.2f} GiB) cannot hold "
                                    "one request alone", "add GPUs, quantize the weights or the KV cache, or shorten "
                                    "the prompt")
        victim = running.pop()
        prefilled[victim] = 0
        need[victim] = prompts[victim] + done_tokens[victim]
        queue.insert(0, victim)
        preemptions += 1
        if by_ratio and running:  # SGLang's retract_decode: the estimate from what the rest decoded so far
            rest = np.asarray(running, dtype=np.int64)
            ratio = min(1.0, float(np.sum(done_tokens[rest]) + RETRACT_DECODE_STEPS * rest.size)
                        / max(float(np.sum(outputs[rest])), 1.0))

    while nxt < n or queue or running:
        while nxt < n and arrivals[nxt] <= (scheduled_at if ahead else t):
            queue.append(nxt)
            nxt += 1
            if nxt in (n // 2, n):
                waiting_at[nxt == n] = len(queue)
        if len(queue) > max_queue:
            stable = False
            break
        if not running and not queue:
            advance(max(arrivals[nxt] - t, 0.0))  # (async: it may have come during the last pass, already past)
            scheduled_at = t  # an idle engine schedules the request as it arrives
            continue
        run = np.asarray(running, dtype=np.int64)
        decoding = run[prefilled[run] >= need[run]]
        # KV held: what each running request has cached, or (TensorRT-LLM's GUARANTEED_NO_EVICT) its
        # whole prompt + max_tokens, reserved at admission
        used = kv_bytes(reserve[run]) if whole else kv_bytes(prefilled[run])
        pending = prefill_first and (bool(queue) or bool(np.any(prefilled[run] < need[run])))
        budget = budget_tokens - (0 if pending else decoding.size)
        # TensorRT-LLM's batch waiting (PyExecutor._waiting_requests, with decodes running): the context
        # requests are held, and the step decodes alone, until they have waited ``batch_wait_iters`` steps or
        # their tokens plus the decodes reach ``batch_wait_tokens``
        hold = False
        if wait_iters and decoding.size:
            ctx = sum(int(need[r] - prefilled[r]) for r in running if prefilled[r] < need[r])
            ctx += sum(int(need[r]) for r in queue[:max(max_num_seqs - len(running), 0)])
            if ctx:
                if waited >= wait_iters or min(ctx, budget) + decoding.size >= wait_tokens:
                    waited = 0
                else:
                    hold = True
                    budget = 0
        chunks: list[tuple[int, int]] = []
        for r in running:  # continue the prefills already admitted, in admission order
            if prefilled[r] < need[r] and budget > 0:
                c = int(min(need[r] - prefilled[r], budget))
                if not whole and used + c * per_token > kv_capacity_bytes:
                    break
                chunks.append((r, c))
                used += c * per_token
                budget -= c
        # SGLang's PrefillAdder: room = pool - cached - each running request's remaining output (at most
        # CLIP_MAX_NEW tokens) x new_token_ratio; a new request must fit its prompt + remaining output whole
        room = (kv_capacity_bytes - used - ratio * per_token * float(np.sum(np.minimum(
            outputs[run] - done_tokens[run], CLIP_MAX_NEW)))) if by_ratio else 0.0
        while queue and budget > 0 and len(running) < max_num_seqs:
            r = queue[0]
            c = int(min(need[r], budget))
            first_chunk = kv_bytes(np.asarray([reserve[r] if whole else c]))
            if used + first_chunk > kv_capacity_bytes:
                break
            if by_ratio:  # the first request of an idle engine always goes in
                out_left = min(int(outputs[r] - done_tokens[r]), CLIP_MAX_NEW)
                if running and (need[r] - prefilled[r] + out_left) * per_token >= room:
                    break
                room -= (c + (out_left if c >= need[r] - prefilled[r] else 0)) * per_token
            queue.pop(0)
            running.append(r)
            chunks.append((r, c))
            used += first_chunk
            budget -= c
        if prefill_first and chunks:
            decoding = decoding[:0]  # SGLang / V0: a prefill batch runs alone; the decodes wait a step
        if not chunks and decoding.size == 0:
            if not running:
                raise PlannerInputError("kv_capacity", f"the KV cache ({kv_capacity_bytes / 2**30:.2f} GiB) cannot hold "
                                        "one request's first prefill chunk",
                                        "add GPUs, quantize the weights or the KV cache, or shorten the prompt")
            preempt_newest()
            continue
        # their mean context (np.mean's own sum, without its dispatch)
        dctx = float(np.add.reduce(prefilled[decoding], dtype=np.float64)) / decoding.size if decoding.size else 0.0
        if chunks:
            # one forward pass: the decodes plus this step's prefill chunks (their tokens summed,
            # the longest chunk's context standing for the attention of all)
            pt = sum(c for _, c in chunks)
            pctx = max(prefilled[r] + c for r, c in chunks)
            dt = step_s(decoding.size, dctx, pt, pctx) + step_extra
            k = 1
        else:
            # a run of pure decode steps until the next completion, arrival or full cache
            room = (1 << 30) if whole else int((kv_capacity_bytes - used) / (per_token * decoding.size))
            if room < 1:
                preempt_newest()
                continue
            k = min(int(np.min(outputs[decoding] - done_tokens[decoding])), room)
            if hold:  # held context: the run ends when the wait does
                k = min(k, wait_iters - waited)
            b = pad(int(decoding.size))  # decode-only steps run the CUDA graph of the next captured size
            # (the padding rows are no requests: the per-sequence cost is paid for the real ones)
            if nxt < n and np.isfinite(arrivals[nxt]):
                dt0 = step_s(b, dctx, 0, 0, decoding.size) + step_extra
                k = min(k, max(1, int(np.ceil((arrivals[nxt] - t) / dt0))))
            if hold:  # every held step counts towards the wait
                waited += k
            dt = step_s(b, dctx + (k - 1) / 2, 0, 0, decoding.size) + step_extra
        scheduled_at = t + (k - 1) * dt  # the start of this run's last pass: when the next one was scheduled
        advance(k * dt)
        steps += k
        if by_ratio and decoding.size:  # every decode step lowers the estimate towards its floor
            ratio = max(ratio - k * RATIO_DECAY, RATIO_MIN)
        prefilled[decoding] += k
        done_tokens[decoding] += k
        for r, c in chunks:
            prefilled[r] += c
            if prefilled[r] >= need[r]:  # the last chunk samples a token
                done_tokens[r] += 1
                if np.isnan(first[r]):
                    first[r] = t
        run = np.asarray(running, dtype=np.int64)
        ended = run[done_tokens[run] >= outputs[run]]
        if ended.size:
            finish[ended] = t
            running = [r for r in running if done_tokens[r] < outputs[r]]
            if issued < n:  # closed loop: each completion sends the next
                k = min(ended.size, n - issued)
                arrivals[issued:issued + k] = t + back[issued:issued + k]
                issued += k
                arrivals[nxt:issued].sort()  # those still on their way, in the order they reach the engine
    # a queue that keeps growing through the second half means arrivals beyond capacity
    stable = stable and waiting_at[1] <= waiting_at[0] + max(10, 0.05 * n)
    lo, hi = (0, n) if measure == "all" else (int(0.1 * n), max(int(0.9 * n), int(0.1 * n) + 1))
    sel = np.arange(lo, hi)
    sel = sel[~np.isnan(finish[sel])]
    ttft = first[sel] - arrivals[sel] + extra
    e2e = finish[sel] - arrivals[sel] + extra
    tpot = np.where(outputs[sel] > 1, (e2e - ttft) / np.maximum(outputs[sel] - 1, 1), 0.0)
    return SimResult(ttft_s=ttft, tpot_s=tpot, e2e_s=e2e, duration_s=t, completed=int(np.sum(~np.isnan(finish))),
                     mean_running=area_run / t if t else 0.0, mean_queue=area_queue / t if t else 0.0,
                     preemptions=preemptions, steps=steps, stable=stable)
