"""The engine command lines that run a plan, and the benchmark that checks it with the same traffic.

``commands(model, gpu, dep, prompt, output, ...)`` resolves the deployment with its engine's defaults
(planner/deploy.py: the memory fraction and token budget the plan was computed with) and writes
``vllm serve``, ``python -m sglang.launch_server`` or ``trtllm-serve`` with those settings pinned, and
``vllm bench serve``, ``python -m sglang.bench_serving`` or TensorRT-LLM's ``benchmark_serving``
sending the planned traffic: a closed loop of ``batch`` clients (``--max-concurrency``) or Poisson
arrivals (``--request-rate``), as many requests as the simulation runs (planner/traffic.py).

Every flag is a row of ``FLAGS`` with the oldest and newest release whose argument parser was read
(the wheels from PyPI; file and line in ``source``). Inside that range the flag is written as is; a
release outside it gets the flag and a note to check ``--help``; a release where the flag is known to
be absent is refused. What no flag expresses (a weight format the engine only reads from a
pre-quantized checkpoint) is a note; what no command can run (HF transformers, GGUF) is refused.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from . import api, deploy, profiles
from .engines import Version
from .errors import PlannerInputError
from .memory import SERVERS, Deployment
from .opstep import marlin_mxfp4
from .scheduler import async_default
from .spec import ModelSpec
from .traffic import Traffic

ARG_UTILS_09, ARG_UTILS_33 = "vllm 0.9.0 vllm/engine/arg_utils.py", "vllm 0.33.0 vllm/engine/arg_utils.py"
SG_046, SG_056 = "sglang 0.4.6.post5 python/sglang/srt/server_args.py", "sglang 0.5.6 srt/server_args.py"
SG_0523 = "sglang 0.5.23 srt/arg_groups/fields (flag = '--' + field name with '-' for '_', arg_utils.py l.290)"
TRT_SERVE = "TensorRT-LLM tensorrt_llm/commands/serve.py (main @00209af, click options of `serve`)"
TRT_BENCH = "TensorRT-LLM tensorrt_llm/serve/scripts/benchmark_serving.py (main @0228a71)"


@dataclass(frozen=True)
class Flag:
    """One engine flag: the oldest and newest releases read that have it; ``until``: the first release read
    that lacks it (None: the newest read still has it); ``absent_before``: the release before ``since``
    was read and lacks it (else releases before ``since`` were not read)."""

    engine: str
    name: str          # the planner's name for the setting
    flag: str
    since: str
    newest: str
    until: str | None
    source: str
    absent_before: bool = False


FLAGS = (
    Flag("vllm", "tp", "--tensor-parallel-size", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.602; {ARG_UTILS_33} l.1209"),
    Flag("vllm", "pp", "--pipeline-parallel-size", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.600; {ARG_UTILS_33} l.1171"),
    Flag("vllm", "max_model_len", "--max-model-len", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.473; {ARG_UTILS_33} l.991"),
    Flag("vllm", "memory", "--gpu-memory-utilization", "0.9.0", "0.33.0", None,
         f"{ARG_UTILS_09} l.645; {ARG_UTILS_33} l.1389"),
    Flag("vllm", "seqs", "--max-num-seqs", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.789; {ARG_UTILS_33} l.1754"),
    Flag("vllm", "tokens", "--max-num-batched-tokens", "0.9.0", "0.33.0", None,
         f"{ARG_UTILS_09} l.787; {ARG_UTILS_33} l.1740"),
    Flag("vllm", "kv", "--kv-cache-dtype", "0.9.0", "0.33.0", None,
         f"{ARG_UTILS_09} l.648 (CacheDType in vllm/config.py l.1391: auto, fp8, fp8_e4m3, fp8_e5m2); "
         f"{ARG_UTILS_33} l.1397 (vllm/config/cache.py l.44)"),
    Flag("vllm", "kv_bf16", "bfloat16", "0.11.0", "0.33.0", None, "vllm 0.11.0 vllm/config/cache.py l.25 CacheDType "
         "(absent in 0.10.2)", absent_before=True),
    Flag("vllm", "kv_fp16", "float16", "0.33.0", "0.33.0", None, "vllm 0.33.0 vllm/config/cache.py l.44 CacheDType "
         "(absent in 0.12.0)", absent_before=True),
    Flag("vllm", "quantization", "--quantization", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.475; {ARG_UTILS_33} l.992"),
    Flag("vllm", "bitsandbytes", "bitsandbytes", "0.9.0", "0.12.0", "0.33.0", "QUANTIZATION_METHODS in "
         "vllm/model_executor/layers/quantization/__init__.py: 0.9.0-0.12.0 list it, 0.33.0 does not"),
    Flag("vllm", "dtype", "--dtype", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.459; {ARG_UTILS_33} l.977"),
    Flag("vllm", "block_size", "--block-size", "0.9.0", "0.33.0", None, f"{ARG_UTILS_09} l.644; {ARG_UTILS_33} l.1387"),
    Flag("vllm", "graphs", "--cuda-graph-sizes", "0.9.0", "0.12.0", None, f"{ARG_UTILS_09} l.797 (SchedulerConfig); "
         "deprecated in 0.12.0 (l.1098), gone in 0.33.0", absent_before=True),
    Flag("vllm", "graphs_new", "--cudagraph-capture-sizes", "0.12.0", "0.33.0", None,
         f"vllm 0.12.0 vllm/engine/arg_utils.py l.1091; {ARG_UTILS_33} l.1824 (absent in 0.11.0)", absent_before=True),
    Flag("vllm", "async_on", "--async-scheduling", "0.12.0", "0.33.0", None,
         "vllm/engine/arg_utils.py scheduler_group.add_argument('--async-scheduling', **scheduler_kwargs['async_"
         "scheduling']) (0.12.0 and 0.33.0; opt-in since PR #19970, earlier releases not read)"),
    Flag("vllm", "async_off", "--no-async-scheduling", "0.14.0", "0.33.0", None,
         "the same argument: arg_utils.py gives a bool field argparse.BooleanOptionalAction, whose negation it is; "
         "needed from 0.14.0, where async scheduling is on by default (profiles/engines/vllm.json)"),
    Flag("vllm", "bench", "vllm bench serve", "0.8.5", "0.33.0", None, "vllm/entrypoints/cli/benchmark/serve.py (0.8.5 "
         "on); flags in vllm/benchmarks/serve.py: 0.9.0 --max-concurrency l.603, --request-rate l.652, --ignore-eos "
         "l.719, --random-input-len l.752; 0.33.0 l.1679, l.1746, l.1832, vllm/benchmarks/datasets/datasets.py l.1888"),
    Flag("sglang", "tp", "--tp-size", "0.4.6", "0.5.23", None, f"{SG_046} l.698; {SG_056} l.2410; {SG_0523} parallel.py l.45"),
    Flag("sglang", "pp", "--pp-size", "0.4.6", "0.5.23", None, f"{SG_046} l.705; {SG_056} l.2417; {SG_0523} parallel.py l.59"),
    Flag("sglang", "max_model_len", "--context-length", "0.4.6", "0.5.23", None,
         f"{SG_046} l.588; {SG_056} l.2118; {SG_0523} model.py l.110"),
    Flag("sglang", "memory", "--mem-fraction-static", "0.4.6", "0.5.23", None,
         f"{SG_046} l.639; {SG_056} l.2290; {SG_0523} schedule.py l.27"),
    Flag("sglang", "seqs", "--max-running-requests", "0.4.6", "0.5.23", None,
         f"{SG_046} l.645; {SG_056} l.2296; {SG_0523} schedule.py l.31"),
    Flag("sglang", "tokens", "--chunked-prefill-size", "0.4.6", "0.5.23", None,
         f"{SG_046} l.658; {SG_056} l.2315; {SG_0523} schedule.py l.52"),
    Flag("sglang", "kv", "--kv-cache-dtype", "0.4.6", "0.5.23", None,
         f"{SG_046} l.550 (auto, fp8_e5m2, fp8_e4m3); {SG_056} l.2237; {SG_0523} model.py l.197"),
    Flag("sglang", "kv_bf16", "bf16", "0.5.6", "0.5.23", None, f"{SG_056} l.2240 choices (absent in 0.4.6)",
         absent_before=True),
    Flag("sglang", "quantization", "--quantization", "0.4.6", "0.5.23", None,
         f"{SG_046} l.557; {SG_056} l.2221; {SG_0523} model.py l.177 (choices: arg_groups/choices.py l.32, 'fp8')"),
    Flag("sglang", "dtype", "--dtype", "0.4.6", "0.5.23", None, f"{SG_046} l.536; {SG_056} l.2207; {SG_0523} model.py l.160"),
    Flag("sglang", "mixed_chunk", "--enable-mixed-chunk", "0.4.6", "0.5.23", None,
         f"{SG_046} l.1128; {SG_056} l.3493; {SG_0523} schedule.py l.208"),
    Flag("sglang", "graphs", "--cuda-graph-bs", "0.4.6", "0.5.6", "0.5.23", f"{SG_046} l.1165; {SG_056} l.3412"),
    Flag("sglang", "graphs_new", "--cuda-graph-bs-decode", "0.5.23", "0.5.23", None, f"{SG_0523} exec_.py l.640"),
    Flag("sglang", "bench", "python -m sglang.bench_serving", "0.4.6", "0.5.23", None,
         "sglang/bench_serving.py 0.4.6.post5: --random-range-ratio l.1717, --request-rate l.1724, --max-concurrency "
         "l.1731, --disable-ignore-eos l.1764; 0.5.23: a deprecated alias of sglang.benchmark.serving (l.2412-2478)"),
)
_RUNTIMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}


@dataclass(frozen=True)
class EngineCommand:
    """One command line: ``argv`` to run it, ``shell`` to paste it, ``notes`` on what it cannot say."""

    argv: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Commands:
    engine: str
    version: str
    model_id: str
    serve: EngineCommand
    bench: EngineCommand


def flag(engine: str, name: str, version: str, notes: list[str]) -> str:
    """The flag of ``name`` in ``engine`` ``version``; a note when the release was not read; refused when
    the flag is known to be absent."""
    f = next(r for r in FLAGS if r.engine == engine and r.name == name)
    v = Version.parse(version)
    if f.until and v >= Version.parse(f.until) or f.absent_before and v < Version.parse(f.since):
        raise PlannerInputError(name, f"{_RUNTIMES[engine]} {version} has no {f.flag} ({f.source})",
                                f"plan a {_RUNTIMES[engine]} release from {f.since} to {f.newest}")
    if not Version.parse(f.since) <= v <= Version.parse(f.newest):
        notes.append(f"{f.flag}: read in {_RUNTIMES[engine]} {f.since} to {f.newest}, not {version}: check --help")
    return f.flag


def model_id(model: str | ModelSpec, spec: ModelSpec) -> str:
    """What the engine loads: a Hub id as given, a bundled config's source repo, a local config's folder
    (an engine loads a checkpoint folder: config.json beside the weights), else the model's name."""
    if isinstance(model, str):
        from . import hub

        local = Path(model)
        if local.exists() and not profiles._match(model, profiles.model_names()):
            return str(local if local.is_dir() else local.parent)

        if hub.parse_id(model) and not profiles.bundled_repos().get(model.lower()):
            return model.split("@")[0]
        if found := profiles._match(model, profiles.model_names()):
            return profiles.model_source(found).get("repo") or found
    return spec.name


def _refuse_engine(dep: Deployment) -> None:
    if dep.engine != "paged":
        raise PlannerInputError("engine", "transformers is HF generate, a library call: it has no server command",
                                f"plan a serving engine: {', '.join(SERVERS)}")
    if dep.server not in SERVERS:
        raise PlannerInputError("engine", f"no command for engine {dep.server!r}", f"choose one of {', '.join(SERVERS)}")


_DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
_FLOAT = tuple(_DTYPE_NAMES)


def _weights(engine: str, version: str, spec: ModelSpec, weights: str, notes: list[str]) -> list[str]:
    """Flags for the planned weight format. An engine reads a checkpoint's own format from its
    quantization_config, so that needs no flag; from 16-bit weights it makes fp8 itself
    (``--quantization fp8``) and, vLLM up to 0.12, NF4 (``bitsandbytes``); the rest needs a checkpoint."""
    fmt = profiles.formats().get(weights)
    own = api.own_weights(spec)
    if fmt.family == "gguf":
        raise PlannerInputError("weights", f"{weights} is a GGUF (llama.cpp) format: a {_RUNTIMES[engine]} command "
                                "would need the .gguf file itself (and vLLM 0.33 has no GGUF loader)",
                                "run llama.cpp's llama-server on the .gguf file, or plan a safetensors format "
                                "(bf16, fp8, awq-4bit-g128, gptq-4bit-g128)")
    runtime = _RUNTIMES[engine]
    if weights == own:
        if weights in _FLOAT and weights != spec.dtype and engine != "trtllm":
            return [flag(engine, "dtype", version, notes), _DTYPE_NAMES[weights]]
        return []
    if own in _FLOAT and weights in _FLOAT:
        if engine == "trtllm":
            notes.append(f"weights {weights}: trtllm-serve has no dtype flag; set it in a --config YAML file")
            return []
        return [flag(engine, "dtype", version, notes), _DTYPE_NAMES[weights]]
    if own in _FLOAT and fmt.family == "fp8" and engine != "trtllm":
        notes.append(f"weights {weights}: {runtime} quantizes the {own} checkpoint to fp8 at load time "
                     "(online, per-tensor weight scales); the planned bytes differ by the scales only")
        return [flag(engine, "quantization", version, notes), "fp8"]
    if own in _FLOAT and weights == "bnb-nf4" and engine == "vllm":
        q = flag(engine, "quantization", version, notes)
        return [q, flag(engine, "bitsandbytes", version, notes)]
    notes.append(f"weights {weights} ({fmt.label or weights}): {runtime} reads this format from a checkpoint's "
                 f"quantization_config and cannot make it from the {own or 'given'} checkpoint: run a pre-quantized "
                 f"{weights} checkpoint of this model in place of the model id")
    return []


_KV_VALUES = {("vllm", "fp8"): "fp8", ("sglang", "fp8"): "fp8_e4m3", ("vllm", "bf16"): "kv_bf16",
              ("vllm", "fp16"): "kv_fp16", ("sglang", "bf16"): "kv_bf16"}


def _kv(engine: str, version: str, spec: ModelSpec, weights: str, kv_dtype: str, notes: list[str]) -> list[str]:
    """``--kv-cache-dtype``: nothing when the plan's cache is the one the engine allocates under its "auto" (the
    served dtype, or the checkpoint's fp8 KV scheme where this release reads it: api.auto_kv_dtype); else the
    flag that asks for it (a bf16 cache on a checkpoint whose scheme the engine would make fp8 needs one)."""
    compute = weights if weights in _FLOAT else spec.dtype
    if kv_dtype in ("auto", api.auto_kv_dtype(spec, engine, version, weights)[0]):
        return []
    if engine == "trtllm":
        if kv_dtype in ("fp8", "bf16", "fp16"):
            notes.append(f"{kv_dtype} KV: trtllm-serve has no flag; pass `--config kv.yaml` with `kv_cache_config: "
                         f"{{dtype: {kv_dtype}}}` (LLM API KvCacheConfig)")
            return []
    value = _KV_VALUES.get((engine, kv_dtype))
    if value is None:
        raise PlannerInputError("kv_dtype", f"{_RUNTIMES[engine]} has no KV cache dtype that stores {kv_dtype} as the "
                                "planner models it" + (" (vLLM's int8/int4_per_token_head add scales it does not "
                                                      "model)" if kv_dtype in ("int8", "int4") else ""),
                                f"plan kv_dtype fp8 or the model's own {compute}")
    if value.startswith("kv_"):
        value = flag(engine, value, version, notes)
    return [flag(engine, "kv", version, notes), value]


def _graphs(engine: str, version: str, dep: Deployment, notes: list[str]) -> list[str]:
    if not dep.cuda_graph_sizes or engine == "trtllm":
        return []
    new = Version.parse(version) >= Version.parse("0.12.0" if engine == "vllm" else "0.5.23")
    sizes = [str(b) for b in sorted(set(dep.cuda_graph_sizes))]
    return [flag(engine, "graphs_new" if new else "graphs", version, notes), *sizes]


def _shared(engine: str, spec: ModelSpec, dep: Deployment, max_model_len: int, notes: list[str]) -> list[str]:
    """The flags vLLM and SGLang share, each spelled as the engine's release spells it: parallelism,
    context, memory fraction, running requests, token budget, KV dtype and weight format."""
    v = dep.server_version
    argv = [flag(engine, "tp", v, notes), str(dep.tp)]
    if dep.pp > 1:
        argv += [flag(engine, "pp", v, notes), str(dep.pp)]
    argv += [flag(engine, "max_model_len", v, notes), str(max_model_len), flag(engine, "memory", v, notes),
             f"{dep.util:g}", flag(engine, "seqs", v, notes), str(dep.seqs), flag(engine, "tokens", v, notes),
             str(dep.mnbt)]
    return argv + _kv(engine, v, spec, dep.weights, dep.kv_dtype, notes) + _weights(engine, v, spec, dep.weights, notes)


def _vllm_serve(mid: str, spec: ModelSpec, dep: Deployment, max_model_len: int, notes: list[str]) -> list[str]:
    v = dep.server_version
    argv = ["vllm", "serve", mid] + _shared("vllm", spec, dep, max_model_len, notes)
    if dep.block_size != 16:
        argv += [flag("vllm", "block_size", v, notes), str(dep.block_size)]
    if dep.async_scheduling is not None:  # written when it differs from the release's default (on from 0.14.0)
        if dep.async_scheduling != async_default(profiles.engine_table("vllm").resolve(v)[0], dep.pp):
            argv.append(flag("vllm", "async_on" if dep.async_scheduling else "async_off", v, notes))
    if marlin_mxfp4(profiles.formats().get(dep.weights).family, dep):
        # an environment variable, not a flag (fused_moe/oracle/mxfp4.py select_mxfp4_moe_backend)
        argv = ["env", "VLLM_MXFP4_USE_MARLIN=1", *argv]
    return argv + _graphs("vllm", v, dep, notes)


def _sglang_serve(mid: str, spec: ModelSpec, dep: Deployment, max_model_len: int, notes: list[str]) -> list[str]:
    v = dep.server_version
    argv = ["python", "-m", "sglang.launch_server", "--model-path", mid] + _shared("sglang", spec, dep, max_model_len,
                                                                                   notes)
    if dep.enable_mixed_chunk:
        argv.append(flag("sglang", "mixed_chunk", v, notes))
    return argv + _graphs("sglang", v, dep, notes)


def _trtllm_serve(mid: str, spec: ModelSpec, dep: Deployment, max_model_len: int, notes: list[str]) -> list[str]:
    """trtllm-serve's click options (TRT_SERVE): --tp_size, --pp_size, --max_batch_size, --max_num_tokens,
    --max_seq_len, --kv_cache_free_gpu_memory_fraction (a fraction of the memory its profiling pass leaves free:
    planner/startup.py trtllm_startup)."""
    argv = ["trtllm-serve", mid, "--backend", "pytorch", "--tp_size", str(dep.tp)]
    if dep.pp > 1:
        argv += ["--pp_size", str(dep.pp)]
    argv += ["--max_batch_size", str(dep.seqs), "--max_num_tokens", str(dep.mnbt), "--max_seq_len",
             str(max_model_len), "--kv_cache_free_gpu_memory_fraction", f"{dep.util:g}"]
    _kv("trtllm", dep.server_version, spec, dep.weights, dep.kv_dtype, notes)
    _weights("trtllm", dep.server_version, spec, dep.weights, notes)
    if dep.batch_wait_timeout_iters:
        notes.append("batch wait: trtllm-serve has no flag; pass `--extra_llm_api_options wait.yaml` with "
                     f"`batch_wait_timeout_iters: {dep.batch_wait_timeout_iters}` and "
                     f"`batch_wait_max_tokens_ratio: {dep.batch_wait_max_tokens_ratio:g}`")
    notes.append(f"flags read from {TRT_SERVE}, not from a {dep.server_version} release")
    return argv


def bench(engine: str, version: str, mid: str, traffic: Traffic) -> EngineCommand:
    """The serving benchmark that sends ``traffic``: fixed lengths, every output run to its length
    (``--ignore-eos``), ``--max-concurrency`` clients (closed loop) or ``--request-rate`` (Poisson)."""
    notes: list[str] = []
    out = min(traffic.output_tokens, traffic.max_tokens or traffic.output_tokens)
    n, p = str(traffic.n_requests()), str(traffic.prompt_tokens)
    load = (["--max-concurrency", str(traffic.concurrency)] if traffic.concurrency is not None
            else ["--request-rate", f"{traffic.request_rate_per_s:g}"])
    if engine == "vllm":
        flag("vllm", "bench", version, notes)
        argv = ["vllm", "bench", "serve", "--model", mid, "--dataset-name", "random", "--random-input-len", p,
                "--random-output-len", str(out), *load, "--num-prompts", n, "--ignore-eos"]
    elif engine == "sglang":
        flag("sglang", "bench", version, notes)
        # range ratio 1: lengths drawn from [len x ratio, len], so 1 keeps them fixed (benchmark/datasets/common.py)
        argv = ["python", "-m", "sglang.bench_serving", "--backend", "sglang", "--model", mid, "--dataset-name",
                "random", "--random-input-len", p, "--random-output-len", str(out), "--random-range-ratio", "1",
                *load, "--num-prompts", n]
        notes.append("sglang.bench_serving ignores EOS unless --disable-ignore-eos is given")
    else:
        argv = ["python", "-m", "tensorrt_llm.serve.scripts.benchmark_serving", "--model", mid, "--backend", "openai",
                "--dataset-name", "random", "--random-ids", "--tokenize-on-client", "--random-input-len", p,
                "--random-output-len", str(out), *load, "--num-prompts", n, "--ignore-eos"]
        notes.append(f"flags read from {TRT_BENCH}")
    if traffic.distribution != "fixed":
        notes.append(f"the plan's {traffic.distribution} lengths have no benchmark flag: the benchmark sends the means")
    if traffic.max_tokens is not None and traffic.max_tokens < traffic.output_tokens:
        notes.append(f"every output runs to the max_tokens cap of {traffic.max_tokens}")
    return EngineCommand(tuple(argv), tuple(notes))


def commands(model: str | ModelSpec, gpu: str, dep: Deployment, prompt: int, output: int, batch: int,
             rate: float | None = None, max_tokens: int | None = None, max_model_len: int | None = None) -> Commands:
    """The serve and benchmark commands of ``dep`` serving ``batch`` concurrent requests of ``prompt`` +
    ``output`` tokens (or Poisson arrivals at ``rate``). ``max_model_len``: default prompt + max_tokens
    (the longest request the traffic sends), else prompt + output."""
    _refuse_engine(dep)
    spec = api.resolve_model(model)
    _, version, _ = profiles.engine_table(dep.server).resolve(dep.server_version)
    dep = replace(dep, max_num_seqs=batch, server_version=str(version))
    traffic = Traffic(prompt, output, concurrency=None if rate else batch, request_rate_per_s=rate,
                      max_tokens=max_tokens)
    length = max_model_len or prompt + (max_tokens or output)
    res = deploy.resolve(spec, profiles.gpu(gpu), dep).dep
    mid = model_id(model, spec)
    notes: list[str] = []
    if isinstance(model, str) and mid != model and mid == str(Path(model).parent):
        notes.append(f"{mid} is the folder of the config you gave: the engine loads the checkpoint from there "
                     "(its weights beside config.json), or give the model's Hub id instead")
    build = {"vllm": _vllm_serve, "sglang": _sglang_serve, "trtllm": _trtllm_serve}[dep.server]
    argv = build(mid, spec, replace(res, server_version=str(version)), length, notes)
    return Commands(dep.server, str(version), mid, EngineCommand(tuple(argv), tuple(notes)),
                    bench(dep.server, str(version), mid, traffic))
