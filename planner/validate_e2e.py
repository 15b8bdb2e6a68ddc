"""End-to-end serving measurements against the planner, engine by engine.

The published runs (AIC silicon rows, profiles/reference): a model served by vLLM, SGLang or
TensorRT-LLM on H100 / H200 at a client concurrency, with prompt (isl) and output (osl) lengths;
measured mean TTFT and TPOT. Each row is predicted as the benchmark ran it: the plan built for that
engine and release with the flags the run was served with (its start-up KV pool and scheduler,
planner/deploy.py), then the continuous-batching simulation of that benchmark's closed loop of
``concurrency`` clients (planner/simulate.py): the pipeline rows are SemiAnalysis InferenceX runs
(``HARNESS`` below), the gap-analysis rows aiperf runs through Dynamo. The mean-value model (one
prompt alone) is kept beside it as the lower bound.

``cross_validated`` refits the fixed per-step and per-request costs on every model but one and
scores the one left out (leave one model out), per engine and GPU: the honest test of the fitted
figures, kept apart from the in-sample one in docs/validation.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import api, profiles
from . import reference as ref
from .engines import Version
from .errors import PlannerInputError
from .memory import Deployment
from .serving import evaluate
from .startup_terms import capture_sizes
from .traffic import Traffic, serve_lengths

# gemm_quant_mode of the silicon rows -> the planner's weight format
QUANT = {"fp8": "fp8", "fp8_block": "fp8-block", "nvfp4": None, "int4_wo": None}


def rows(engines: tuple[str, ...] = ("vllm", "sglang", "trtllm")) -> pd.DataFrame:
    """The aggregated-serving rows of bundled models, with the plan each needs."""
    refdir = ref.find_reference(None)
    if refdir is None:
        return pd.DataFrame()
    d = ref.silicon_rows(refdir, profiles.model_names())
    if d.empty:
        return d
    d = d[d["backend"].isin(engines) & d["gpu"].isin(profiles.gpus())].copy()
    # plain tensor parallelism only: the MoE split must be the attention's (moe_tp x moe_ep = tp, no EP)
    tp = d["tp_size"].fillna(1)
    moe_tp, moe_ep = d["moe_tp_size"].fillna(tp).replace(0, np.nan).fillna(tp), d["moe_ep_size"].fillna(1).replace(0, 1)
    moe = d["model"].map(lambda m: profiles.load_model(m).is_moe)
    d = d[~moe | ((moe_tp == tp) & (moe_ep == 1))].copy()
    d["weights"] = d["gemm_quant_mode"].map(QUANT).where(d["gemm_quant_mode"].notna(), "bf16")
    d["version"] = d["backend_version"].map(_version)
    # one measurement, one row: the collection repeats some runs under a second date or model name
    # (DeepSeek-R1 and -V3 share an architecture and the same figures); the first is kept
    same = ["backend", "backend_version", "gpu", "tp_size", "pp_size", "isl", "osl", "batch_size",
            "silicon_ttft_ms", "silicon_tpot_ms"]
    d = d.drop_duplicates(subset=same)
    # the architecture: checkpoints of one (DeepSeek-V3 and R1) are one model for leave-one-model-out
    arch = {m: (lambda sp: f"{sp.model_type}-{sp.num_layers}x{sp.hidden_size}")(profiles.load_model(m))
            for m in d["model"].unique()}
    d["family"] = d["model"].map(arch)
    d["source"] = np.where(d["silicon_data_source"].str.contains("aic-auto-gap-analysis", na=False),
                           "gap-analysis", "aic-pipeline")
    return d.reset_index(drop=True)


def _version(text) -> str | None:
    try:
        return str(Version.parse(str(text))) if isinstance(text, str) else None
    except PlannerInputError:
        return None  # e.g. 'gpt-oss-dev': the newest rules


# The deployment the runs were served with. The silicon rows come from aiconfigurator's own benchmark
# pipeline, whose generator writes the engine flags from the row's batch size and prompt length
# (ai-dynamo/aiconfigurator @095f58a, src/aiconfigurator/generator/rule_plugin/benchmark/
# {vllm,sglang,trtllm}.rule, mapped to flags by generator/config/backend_config_mapping.yaml):
# max_num_seqs = batch size; vLLM max_num_batched_tokens = batch + isl + 1500; TensorRT-LLM the same
# rounded up to its 32-token blocks; SGLang max_prefill_tokens = isl + 1500 with --enable-mixed-chunk;
# CUDA graphs captured at every batch size 1..batch (no padding, and no graph above it). The client
# is aiperf, a closed loop at that concurrency, 20 rounds after 2 rounds of warm-up, streaming, fixed
# lengths with ignore_eos (config/backend_templates/benchmark/bench_run.sh.j2).
AIC_EXTRA_TOKENS = 1500


# The pipeline rows (``source`` aic-pipeline: the collection's database dumps, "config_id",
# "workflow_run_id", images vllm/vllm-openai) are SemiAnalysis InferenceX runs: the same models (Llama-3.3-70B-
# Instruct-FP8, here Llama-3.1-70B's architecture; gpt-oss-120b; DeepSeek-R1), GPUs and TP lists (Llama on
# H100 at TP 2 / 4 / 8, on H200 at 1 / 2 / 4 / 8), the three workloads 1k/1k, 1k/8k, 8k/1k and the
# concurrencies 4-64 of InferenceX's sweep (SemiAnalysisAI/InferenceX @ac1998a, .github/workflows/
# 70b-tmpl.yml and benchmark-tmpl.yml ``conc-list: [4, 8, 16, 32, 64]``; aiconfigurator @095f58a reads
# InferenceX's database, sdk/config_adapter/inferencex.py). Their client is vLLM's benchmark_serving.py
# (benchmarks/70b_fp8_h200_slurm.sh, gptoss_fp4_h200_slurm.sh, single_node/*.sh: ``--dataset-name random
# --random-range-ratio 0.8 --num-prompts CONC x 10 --max-concurrency CONC --request-rate inf --ignore-eos``):
# ten rounds per client, and every prompt and output length drawn uniformly from [int(0.8 L), L]
# (utils/bench_serving/benchmark_serving.py ``sample_uniform``), so the mean prompt is 0.9 isl and the
# clients drift out of step instead of staying in the pass they were admitted in.
HARNESS = {"aic-pipeline": {"rounds": 10, "range_ratio": 0.8}}


def mean_length(source: str, length: int) -> float:
    """The mean of a run's lengths: (int(r L) + L) / 2 for InferenceX's uniform draw on [int(r L), L]
    (8192 at r = 0.8: (6553 + 8192) / 2 = 7372.5), L for fixed lengths."""
    h = HARNESS.get(source)
    return (int(length * h["range_ratio"]) + length) / 2 if h else float(length)


def lengths(source: str, isl: int, osl: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The prompt and output lengths of every request of a run of ``c`` clients, as its client drew them."""
    h = HARNESS.get(source)
    if h is None:
        t = Traffic(isl, osl, concurrency=c)
        return t.lengths()
    rng = np.random.default_rng(seed)
    n = h["rounds"] * c
    draw = lambda L: rng.integers(int(L * h["range_ratio"]), L + 1, size=n).astype(np.int64)  # noqa: E731
    return draw(isl), draw(osl)


FLAGS = ("generator", "defaults", "inferencex")


def deployment(row, spec, flags: str = "generator") -> Deployment:
    """The row's deployment: as aiconfigurator's benchmark generator wrote it (see above), with the
    engine's own defaults (``flags="defaults"``: the gap-analysis rows do not record theirs), or as
    InferenceX's launch scripts serve it (``flags="inferencex"``, ``_inferencex``)."""
    # the checkpoint's own quantization decides (vLLM runs Qwen3-235B-A22B-FP8's block fp8 whatever the label)
    own = api.default_weights(spec)
    weights = own if spec.quant else (row.weights if isinstance(row.weights, str) and row.weights else own)
    version = row.version if isinstance(row.version, str) else None
    kv = kv_dtype(row)
    if flags == "defaults":
        return Deployment(weights=weights, engine="paged", tp=int(row.tp_size), pp=int(row.pp_size),
                          server=row.backend, server_version=version, kv_dtype=kv)
    if flags == "inferencex":
        ix = _inferencex(row, spec)
        if ix is not None:
            kv = ix.pop("kv_dtype", kv)  # a script that sets no KV dtype serves the engine's default
            return Deployment(weights=weights, engine="paged", tp=int(row.tp_size), pp=int(row.pp_size),
                              server=row.backend, server_version=version, kv_dtype=kv, **ix)
    b, isl = int(row.batch_size), int(row.isl)
    if row.backend == "sglang":
        budget = isl + AIC_EXTRA_TOKENS
    elif row.backend == "trtllm":
        budget = -(-(b + isl + AIC_EXTRA_TOKENS) // 32) * 32
    else:
        budget = b + isl + AIC_EXTRA_TOKENS
    return Deployment(weights=weights, engine="paged", tp=int(row.tp_size), pp=int(row.pp_size),
                      server=row.backend, server_version=version, kv_dtype=kv, max_num_seqs=b, max_num_batched_tokens=budget,
                      cuda_graph_sizes=tuple(range(1, b + 1)), enable_mixed_chunk=row.backend == "sglang")


def _inferencex(row, spec) -> dict | None:
    """The scheduler flags of InferenceX's launch script for the row's engine and model (SemiAnalysisAI/
    InferenceX: benchmarks/70b_fp8_h{100,200}_slurm.sh @ac1998a, gptoss_fp4_h{100,200}_slurm.sh @e06929c
    and @4e135fd, single_node/gptoss_fp4_h{100,200}.sh and dsr1_fp8_h200.sh @0f78cf4, 70b_fp8_h200_trt_slurm.sh
    @ac1998a, gptoss_fp4_h200_trt_slurm.sh @e06929c). None where the script's flags are not known here
    (TensorRT-LLM's DeepSeek: ``--max_num_tokens $MAX_NUM_TOKENS``): the generator's are used."""
    b = int(row.batch_size)
    oss = spec.model_type == "gpt_oss"
    if row.backend == "vllm":
        # max-num-batched-tokens 8192, --max-num-seqs CONC, prefix caching off; gpt-oss captures CUDA graphs
        # up to 2048 tokens (cuda-graph-sizes / max-cudagraph-capture-size 2048), Llama keeps vLLM's default
        graphs = tuple(capture_sizes(1024, 8192)[0] + list(range(528, 2049, 16))) if oss else None
        # gpt-oss on H100/H200 from the v0.13.0 image on: export VLLM_MXFP4_USE_MARLIN=1 (@4e52ed4, 2026-01-02,
        # "Add VLLM_MXFP4_USE_MARLIN=1 to H100 and H200 benchmark scripts"); the runs before it (v0.11.2, and
        # those without a version, measured 2025-11 and 2025-12) ran vLLM's default kernel
        marlin = oss and isinstance(row.version, str) and Version.parse(row.version).parts >= (0, 13, 0)
        # and every script's config.yaml sets ``async-scheduling: true`` (70b_fp8_h100_slurm.sh @2a205bb, 70b_fp8_h200_slurm.sh
        # @409e9a4, gptoss_fp4_h100_slurm.sh @2e46dba, gptoss_fp4_h200_slurm.sh @1d889b8): the scheduler runs a step ahead, its CPU work hidden behind the GPU
        return {"max_num_seqs": b, "max_num_batched_tokens": 8192, "cuda_graph_sizes": graphs,
                "mxfp4_moe_backend": "marlin" if marlin else "auto", "async_scheduling": True}
    if row.backend == "sglang":
        # --chunked-prefill-size 32768 --max-prefill-tokens 32768 --max-running-requests 512
        # --cuda-graph-max-bs 512 --mem-fraction-static 0.82, no --enable-mixed-chunk; and no --kv-cache-dtype
        # (dsr1_fp8_h200.sh @0f78cf4 and @161e7f6): the engine's "auto", the model's dtype (startup._kv_dtype: bf16
        # for DeepSeek-R1's block-fp8 checkpoint, whose quantization_config names no KV scheme), whatever the row's
        # precision says
        return {"max_num_seqs": 512, "max_num_batched_tokens": 32768, "cuda_graph_sizes": tuple(range(1, 513)),
                "gpu_memory_utilization": 0.82, "kv_dtype": spec.dtype}
    if oss:  # --max_batch_size CONC --max_num_tokens 20000, cuda_graph_config max_batch_size CONC
        return {"max_num_seqs": b, "max_num_batched_tokens": 20000, "cuda_graph_sizes": tuple(range(1, b + 1))}
    if spec.model_type == "llama":  # --max_num_tokens 16384, cuda_graph_config max_batch_size 1024; at 1k/1k
        # below TP 8 also batch_wait_timeout_iters 20, batch_wait_max_tokens_ratio 0.9 ("will improve the performance")
        wait = int(row.isl) == 1024 and int(row.osl) == 1024 and int(row.tp_size) < 8
        return {"max_num_batched_tokens": 16384, "cuda_graph_sizes": tuple(range(1, 1025)),
                "batch_wait_timeout_iters": 20 if wait else 0, "batch_wait_max_tokens_ratio": 0.9 if wait else 0.0}
    return None


def kv_dtype(row) -> str:
    """The KV cache dtype a run was served with. aiconfigurator serves an fp8 run with an fp8 KV cache
    and fp8 attention: an fp8 / fp8_block / nvfp4 quantization sets ``kvcache_quant_mode`` and
    ``fmha_quant_mode`` to fp8 (ai-dynamo/aiconfigurator @095f58a,
    aic-core/src/aiconfigurator_core/sdk/models/helpers.py ``_infer_quant_modes_from_raw_config``, the
    "FMHA quant mode" block), and its generator writes that as ``--kv-cache-dtype fp8``
    (generator/module_bridge.py, config/backend_config_mapping.yaml). The rows record it as their
    ``precision``: fp8. The runs agree: Llama-3.1-70B fp8 on one H200 (1,024 in, 8,192 out) holds 32
    clients without queueing (TTFT 0.47 s) and queues at 64 (5.3 s); 32 x 9,216 tokens fit the fp8
    pool (394k tokens) and not the bf16 one (197k). gpt-oss rows (precision fp4) keep the default."""
    return "fp8" if str(getattr(row, "precision", "")).lower() == "fp8" else "bf16"


# The flags the gap-analysis rows (which record none) are predicted with, per engine. SGLang's match its
# own defaults (chunked_prefill_size 8192, max_prefill_tokens 16384): at 16 clients and 128-512 output
# tokens the clients stay in waves and every TTFT is a whole wave's prefill (Qwen3-32B, TP 4, 16 x 1,024
# tokens: 0.49 s measured, 45 ms for one prompt), which the generator's one-prompt chunks (isl + 1500)
# cannot give: TTFT median |error| 20 % with the defaults, 78 % with the generator's flags. TensorRT-LLM's
# (Qwen3-32B, Llama-3.1-8B) too, less clearly: TTFT 35 % with its defaults (max_num_tokens 8192), 43 % with
# the generator's, TPOT 6.9 and 5.5 %. vLLM's fit both alike (TTFT 40 % and 41 %) and keep the generator's.
GAP_FLAGS = {"sglang": "defaults", "trtllm": "defaults"}


def flags_for(source: str, engine: str, gap_flags: str | None = None) -> str:
    """The flags a row is predicted with: InferenceX's for the pipeline rows; for the gap-analysis rows
    ``gap_flags``, else ``GAP_FLAGS`` of the row's engine, else the generator's."""
    if source != "gap-analysis":
        return "inferencex"
    return gap_flags or GAP_FLAGS.get(engine, "generator")


def predict(d: pd.DataFrame, overheads: dict | None = None, gap_flags: str | None = None) -> pd.DataFrame:
    """Mean-value and simulated TTFT / TPOT for every row (``overheads``: {engine: {cost: value}}
    replaces the engine's fixed costs, planner/fit_e2e.py; ``gap_flags``: the flags assumed for the
    gap-analysis rows, which do not record them; None: ``GAP_FLAGS`` of the row's engine, else the
    generator's)."""
    out = []
    # osl too: InferenceX's TensorRT-LLM Llama script sets its batch wait at 1k/1k only (_inferencex)
    keys = ["model", "gpu", "tp_size", "pp_size", "weights", "backend", "version", "batch_size", "isl", "source", "precision",
            "osl"]
    for key, g in d.groupby(keys, dropna=False):
        try:
            p = api.build_plan(key[0], key[1], deployment(g.iloc[0], profiles.load_model(key[0]),
                                                          flags_for(key[9], key[5], gap_flags)))
        except PlannerInputError:
            continue
        if overheads and key[5] in overheads:
            c = overheads[key[5]]
            p = api.with_engine_costs(p, c["step_overhead_s"], c["request_overhead_s"], c["eager_layer_overhead_s"],
                                      c.get("eager_overlaps"), c.get("prefill_token_layer_s", 0.0),
                                      c.get("allreduce_spread", 0.0), c.get("return_gap_s", 0.0),
                                      c.get("sequence_step_s", 0.0))
        mv = evaluate(p, g["batch_size"], np.array([mean_length(key[9], int(n)) for n in g["isl"]]),
                      np.array([mean_length(key[9], int(n)) for n in g["osl"]]))
        for i, r in enumerate(g.itertuples()):
            sim = _simulate(p, int(r.batch_size), int(r.isl), int(r.osl), key[9])
            out.append({"id": r.id, "ttft_mean_value_s": float(np.asarray(mv["ttft_s"])[i]),
                        "tpot_mean_value_s": float(np.asarray(mv["tpot_s"])[i]), **sim})
    pred = pd.DataFrame(out)
    return d.merge(pred, on="id", how="inner") if not pred.empty else pred


def _simulate(p, c: int, isl: int, osl: int, source: str = "gap-analysis") -> dict:
    """The run's closed loop: aiperf's fixed lengths and twenty rounds (planner/traffic.py), or the
    source's own client (``HARNESS``: InferenceX's ten rounds of lengths drawn on [0.8 L, L])."""
    try:
        r = serve_lengths(p, *lengths(source, isl, osl, c), concurrency=c)
    except PlannerInputError:
        return {"ttft_s": np.nan, "tpot_s": np.nan, "e2e_s": np.nan}
    return {"ttft_s": float(np.mean(r.ttft_s)), "tpot_s": float(np.mean(r.tpot_s)), "e2e_s": float(np.mean(r.e2e_s))}


LIGHT_CLIENTS = 8  # at most this many clients: a prompt rarely waits for another's prefill


def light_load_growth(d: pd.DataFrame) -> pd.DataFrame:
    """How fast the measured mean TTFT grows with the prompt at light load, against the operator
    tables' prefill of one prompt alone (no fitted engine cost), per model, GPU, TP and release.

    At the lowest concurrency (<= ``LIGHT_CLIENTS``) of a deployment run at two prompt lengths, the
    growth of the mean TTFT from the short to the long prompt is the growth of one prompt's prefill.
    ``extra_s_per_token``: what the tables miss per prompt token; ``layers_over_tp``: the layers one
    rank runs over TP; ``ids``: the runs it comes from (``ids_short``, ``ids_long``: at each length), whose
    measured and simulated growth planner/fit_e2e.py ``prefill_cost`` compares. Only the runs whose flags
    are recorded (aic-pipeline)."""
    out = []
    if d.empty:
        return pd.DataFrame(out)
    d = d[d["source"] == "aic-pipeline"]
    for key, g in d.groupby(["model", "gpu", "tp_size", "version", "precision"], dropna=False):
        c = int(g["batch_size"].min())
        if c > LIGHT_CLIENTS:
            continue
        g = g[g["batch_size"] == c]
        by_isl = g.groupby("isl")
        if by_isl.ngroups < 2:
            continue
        short, long_ = min(by_isl.groups), max(by_isl.groups)
        gs, gl = by_isl.get_group(short), by_isl.get_group(long_)
        try:
            ts, tl = table_prefill_s(gs.iloc[0]), table_prefill_s(gl.iloc[0])
        except PlannerInputError:
            continue
        meas = (gl["silicon_ttft_ms"].mean() - gs["silicon_ttft_ms"].mean()) / 1e3
        spec = profiles.load_model(key[0])
        grew = mean_length("aic-pipeline", int(long_)) - mean_length("aic-pipeline", int(short))
        out.append({"model": key[0], "family": g["family"].iloc[0], "gpu": key[1], "tp": int(key[2]), "clients": c,
                    "isl_short": int(short), "isl_long": int(long_), "measured_growth_s": meas,
                    "tables_growth_s": tl - ts, "extra_s_per_token": (meas - (tl - ts)) / grew,
                    "layers_over_tp": spec.num_layers / int(key[2]),
                    "ids": tuple(gs["id"]) + tuple(gl["id"]), "ids_short": tuple(gs["id"]),
                    "ids_long": tuple(gl["id"])})
    return pd.DataFrame(out)


def table_prefill_s(row, batched: bool = False) -> float:
    """One prompt of the run's mean length (``mean_length``) prefilled by the row's deployment on the
    measured operator tables, without the engine's fitted costs: alone, or (``batched``) its share of a
    pass holding as many prompts as the run's token budget and concurrency allow, the cheapest a prompt
    can be had."""
    p = api.build_plan(row.model, row.gpu, deployment(row, profiles.load_model(row.model),
                                                      flags_for(row.source, row.backend)))
    p = api.with_engine_costs(p, 0.0, 0.0, 0.0, prefill_token_layer_s=0.0, allreduce_spread=0.0, sequence_step_s=0.0)
    isl = round(mean_length(row.source, int(row.isl)))
    k = max(1, min(int(row.batch_size), p.timing.dep.mnbt // max(isl, 1))) if batched else 1
    return float(np.asarray(p.timing.prefill(k, isl)["time_s"])) / k


# A run whose clients received answers faster than the GPU can compute their prompts did not compute them:
# its requests per second (clients / the measured mean request time) times one prompt's prefill on the
# measured tables (``table_prefill_s`` batched: the cheapest pass the run's budget allows) exceeds 1, the
# prompts alone needing more GPU time than the run lasted, before a single decode pass. Such a run served
# its prompts from a cache, not what the row says: the gap-analysis client, aiperf, draws its synthetic
# prompts from a dataset of 100 entries unless told otherwise (``--num-dataset-entries``: ai-dynamo/aiperf
# @023c387 aiperf/common/config/config_defaults.py ``InputDefaults.NUM_DATASET_ENTRIES = 100``) and reuses them for the 22 x
# concurrency requests aiconfigurator's template sends (src/aiconfigurator/generator/config/
# backend_templates/benchmark/bench_run.sh.j2 @095f58a: ``--num-requests concurrency x 20``, ``--warmup-
# request-count concurrency x 2``, no dataset size), while its generator leaves prefix caching on
# (rule_plugin/benchmark/vllm.rule and sglang.rule ``disable_prefix_cache = false``). The reuse is a
# property of the campaign, not of the one run, and of a degree the rows do not record: every run of a
# gap-analysis file with one such run is screened. The simulation plans cold prompts; a screened run is
# predicted and kept in profiles/validation/e2e-<engine>.csv (``screened``), but not fitted on and not
# counted in the targets (benchmarks/bench_e2e.py prints it apart).
COLD_LIMIT = 1.0


def screened(frame: pd.DataFrame) -> np.ndarray:
    """Per run: True where ``screen`` left it out (a frame without the column: none)."""
    return frame["screened"].fillna("").astype(str).ne("").to_numpy() if "screened" in frame.columns \
        else np.zeros(len(frame), dtype=bool)


def measured_e2e_s(d: pd.DataFrame) -> pd.Series:
    """A run's measured mean request time: TTFT + (osl - 1) x TPOT, in seconds."""
    return (d["silicon_ttft_ms"] + (d["osl"] - 1) * d["silicon_tpot_ms"]) / 1e3


def screen(d: pd.DataFrame) -> pd.DataFrame:
    """``d`` with ``cold_share`` (the share of the run's duration its prompts need on the measured tables,
    above) and ``screened`` (why a run is left out of the fit and the targets; "" for a run kept)."""
    d = d.copy()
    prefill = np.full(len(d), np.nan)
    for i, r in enumerate(d.itertuples()):
        try:
            prefill[i] = table_prefill_s(r, batched=True)
        except PlannerInputError:
            continue
    e2e = measured_e2e_s(d).where(lambda x: x > 0)
    d["cold_share"] = d["batch_size"].astype(float) / e2e * prefill
    over = d["cold_share"] > COLD_LIMIT
    src = d["silicon_data_source"] if "silicon_data_source" in d.columns else pd.Series("", index=d.index)
    file = src.fillna("").astype(str).str.extract(r"source_file=([^;]+)", expand=False).fillna("")
    reused = set(file[over & (d["source"] == "gap-analysis")])
    d["screened"] = np.where(over, "prompts need more GPU time than the run lasted",
                             np.where((d["source"] == "gap-analysis") & file.isin(reused - {""}),
                                      "same campaign as a run whose prompts cannot have been computed", ""))
    return d
