"""Offline maximum throughput: TensorRT-LLM's published ``trtllm-bench throughput`` tables, predicted and scored.

NVIDIA's perf-overview page (profiles/validation/trtllm-perf-overview.md says which commit and which cells)
prints the output tokens a second per GPU that ``trtllm-bench throughput`` measured: every request queued at
once (``--concurrency -1``), fixed lengths (``prepare_dataset.py token-norm-dist`` with both stdevs 0), EOS
ignored (every request runs to its full output), no HTTP front end. No fitted cost of the planner saw them;
they test the simulation where the engine, not a client or a server process, sets the pace.

What the command leaves out, ``trtllm-bench`` fills in, and so does ``bench_settings`` (read from
TensorRT-LLM's ``tensorrt_llm/bench/build/tuning.py`` at 04cba88 and ``bench/benchmark/utils/general.py``):
``max_batch_size`` and ``max_num_tokens`` from the KV cache it expects to hold at the run's ISL + OSL, and,
chunked prefill being off by default, ``max_num_tokens`` raised to the longest prompt plus the batch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import api, params, profiles
from .deploy import resolve
from .errors import PlannerInputError
from .memory import Deployment
from .spec import CHUNKED, FULL, SLIDING
from .traffic import serve_lengths

CSV = "trtllm-perf-overview.csv"
GIB = 1024 ** 3
# tuning.py L10-15: bytes per weight and per KV element by ModelOpt quant algo; anything else counts 2
BENCH_BYTES = {"nvfp4": 0.5, "fp8": 1.0, "fp8-tensor": 1.0, "fp8-block": 1.0}
# build.py applies the heuristic only to these quant algos (NVFP4, FP8, FP8_BLOCK_SCALES, none); other formats
# (gpt-oss's MXFP4) keep the LLM API's defaults, the engine table's (profiles/engines/trtllm.json)
HEURISTIC_WEIGHTS = ("nvfp4", "fp8", "fp8-tensor", "fp8-block", "bf16", "fp16")
KV_FRACTION = 0.90  # trtllm-bench throughput --kv_cache_free_gpu_mem_fraction default (throughput.py L81-83)


def path():
    return profiles.ROOT / "validation" / CSV


def predicted_path():
    """Where benchmarks/bench_throughput.py --write keeps the scored cells (``scored``) the dashboard shows."""
    return profiles.ROOT / "validation" / "trtllm-perf-overview-predicted.csv"


SCORED = ["id", "model", "gpu", "tp", "weights", "kv_dtype", "isl", "osl", "num_requests", "max_batch_size",
          "max_num_tokens", "output_tok_s_per_gpu", "predicted_tok_s_per_gpu", "error_pct", "tables", "source_url"]


def scored(pred: pd.DataFrame) -> pd.DataFrame:
    """The cells with a prediction, the columns the dashboard's Validation page shows."""
    return pred.dropna(subset=["error_pct"])[SCORED].reset_index(drop=True)


def rows(file=None) -> pd.DataFrame:
    p = file or path()
    if not p.is_file():
        return pd.DataFrame()
    return pd.read_csv(p, dtype={"kv_dtype": str, "weights": str})


# tuning.py ``finetune_setting`` L179-197 (optimistic tuning): (below, step) brackets; the floor is the first
# bracket's (a larger bracket's result is above it anyway)
BATCH_STEPS = (64, ((256, 32), (1024, 128), (math.inf, 256)))
TOKEN_STEPS = (2048, ((4096, 256), (8192, 512), (math.inf, 1024)))


def _round_up(raw: float, rule: tuple) -> int:
    """``raw`` rounded up to the step of its bracket, at least the rule's floor (``BATCH_STEPS``, ``TOKEN_STEPS``)."""
    floor, steps = rule
    step = next(st for below, st in steps if raw < below)
    return max(floor, step * math.ceil(raw / step))


def bench_settings(model: str, gpu: str, weights: str, kv_dtype: str, tp: int, isl: int, osl: int,
                   pp: int = 1, fraction: float = KV_FRACTION) -> tuple[int, int]:
    """``max_batch_size, max_num_tokens`` as ``trtllm-bench throughput`` picks them when the command does not
    (tuning.py ``calc_engine_setting`` L53-108 and ``finetune_setting``; general.py L145-152):

    * KV GiB per token = 2 x attention layers x max(tp, KV heads) x head size x KV bytes / 2^30;
    * the engine's GiB = parameters x bytes per weight / 2^30; free = the device's GiB (NVML's total,
      ``bench/build/utils.py get_device_memory``) x GPUs - that;
    * requests the KV cache holds = free x fraction / (KV GiB per token x (ISL + OSL));
    * batch = that (at most 4096) / pp, rounded up; tokens = batch x (1 + ISL / OSL), at most 32,768, rounded up;
    * chunked prefill off: tokens at least ISL + batch.

    Formats outside the heuristic (MXFP4) take the engine table's max_batch_size and max_num_tokens."""
    spec = profiles.load_model(model)
    g = profiles.gpu(gpu)
    if weights in HEURISTIC_WEIGHTS:
        if any(k not in (FULL, SLIDING, CHUNKED) for k in spec.layer_kinds):
            # tuning.py sizes Mamba hybrids with their state cache and plain rounding (L82-113), and MLA with the
            # per-head formula below; neither is reproduced here
            raise PlannerInputError("model", f"trtllm-bench's batch heuristic for {model}'s layer kinds "
                                    f"({', '.join(sorted(set(spec.layer_kinds)))}) is not reproduced",
                                    "give the run's max_batch_size and max_num_tokens")
        w_bytes = BENCH_BYTES.get(weights, 2.0)
        kv_bytes = BENCH_BYTES.get(kv_dtype, 2.0)
        per_token = 2 * spec.num_layers * max(tp, spec.num_kv_heads) * spec.head_dim * kv_bytes / GIB
        # bench/build/utils.py get_device_memory: NVML's total (nvmlDeviceGetMemoryInfo), not CUDA's
        device = (g.nvml_total_memory_bytes or g.total_memory_bytes) / GIB
        free = device * tp * pp - params.params_total(spec) * w_bytes / GIB
        requests = free * fraction / (per_token * (isl + osl)) if free > 0 else 0.0
        if requests < 1:  # calc_engine_setting L116-137 raises: the weights or the KV cache do not fit
            raise PlannerInputError("gpu", f"{model} in {weights} leaves no KV cache for one {isl} + {osl}-token "
                                    f"request on {tp * pp} x {gpu}", "add GPUs (TP)")
        raw_bs = min(requests, 4096) / pp
        batch, tokens = _round_up(raw_bs, BATCH_STEPS), _round_up(min(raw_bs * (1 + isl / osl), 32768), TOKEN_STEPS)
    else:  # the LLM API's defaults, as every TensorRT-LLM plan resolves them (planner/deploy.py)
        d = resolve(spec, g, Deployment(weights=weights, kv_dtype=kv_dtype, tp=tp, pp=pp, server="trtllm")).dep
        batch, tokens = d.seqs, d.mnbt
    return batch, max(tokens, isl + batch)


def deployment(r) -> Deployment:
    batch, tokens = bench_settings(r.model, r.gpu, r.weights, r.kv_dtype, int(r.tp), int(r.isl), int(r.osl))
    return Deployment(weights=r.weights, kv_dtype=r.kv_dtype, engine="paged", tp=int(r.tp), server="trtllm",
                      max_num_seqs=batch, max_num_batched_tokens=tokens)


def offline(p: api.Plan) -> api.Plan:
    """``p`` run as trtllm-bench runs it: no server and no streaming (``--streaming`` is off by default), so
    no request's token is handed on at every step, and the engine's per-sequence cost, fitted on served, streamed
    runs (the scheduler's work for each running request at each step, its output streamed included:
    planner/fit_e2e.py ``sequence_step_s``), is left out; the other fitted costs stay."""
    sc = p.scheduler
    if sc is None:
        return p
    return api.with_engine_costs(p, sc.step_overhead_s, sc.request_overhead_s, sc.eager_layer_overhead_s,
                                 sequence_step_s=0.0)


def predict(d: pd.DataFrame) -> pd.DataFrame:
    """Every row with the simulated output tokens a second per GPU (all requests at once, every one measured,
    output tokens over the run's length) and the settings ``bench_settings`` gave it; ``why`` where none."""
    out = []
    for r in d.itertuples():
        rec = {"id": r.id, "why": ""}
        try:
            dep = deployment(r)
            p = offline(api.build_plan(r.model, r.gpu, dep))
            n = int(r.num_requests)
            prompts, outputs = np.full(n, int(r.isl), np.int64), np.full(n, int(r.osl), np.int64)
            s = serve_lengths(p, prompts, outputs, concurrency=n, measure="all", max_queue=10 ** 6)
        except PlannerInputError as e:
            rec["why"] = str(e)
            out.append(rec)
            continue
        rec.update(max_batch_size=dep.max_num_seqs, max_num_tokens=dep.max_num_batched_tokens,
                   kv_pool_gib=p.memory.kv_budget_bytes() / GIB, mean_running=s.mean_running,
                   predicted_tok_s_per_gpu=float(outputs.sum()) / s.duration_s / dep.tp,
                   tables=p.timing.ops is not None)
        out.append(rec)
    res = d.merge(pd.DataFrame(out), on="id", how="left")
    res["error_pct"] = (res["predicted_tok_s_per_gpu"] - res["output_tok_s_per_gpu"]) / res["output_tok_s_per_gpu"] * 100
    return res


def summary(pred: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 |error| and the signed median of the throughput, over all rows, per model and per GPU."""
    d = pred.dropna(subset=["error_pct"])
    out = []
    for label, part in [("all", d), *((f"model: {k}", v) for k, v in d.groupby("model")),
                        *((f"gpu: {k}", v) for k, v in d.groupby("gpu")),
                        *((f"timing: {'measured tables' if k else 'roofline'}", v) for k, v in d.groupby("tables"))]:
        e = part["error_pct"].astype(float)
        out.append({"group": label, "n": int(e.size), "median": float(e.abs().median()),
                    "p90": float(e.abs().quantile(0.9)), "signed": float(e.median())})
    return pd.DataFrame(out)
