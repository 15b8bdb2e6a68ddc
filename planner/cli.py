"""Command line: ``python -m planner {list,inspect,capacity,fit,...}``.

The names of commands, flags and JSON keys are a stable interface: outside scripts rely on them.
Bad input exits with code 2 and one line naming the field and the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Callable

from . import api, cli_gpu, profiles
from .errors import PlannerInputError
from .memory import MAX_CONTEXT

COMMANDS: dict[str, Callable[[argparse.Namespace], dict | list]] = {}
# What an extension lends the core's commands: "verify" (inspect --verify), set by profiler/cli.py
HOOKS: dict[str, Callable] = {}
# Modules that add sub-commands: each has register(subparsers, command_decorator). These are the
# core's; the program adds the profiler's (planner/__main__.py), so the core never imports it.
EXTENSIONS_CORE = ("planner.cli_serving", "planner.cli_validation", "planner.cli_engine", "planner.cli_commands")
PROFILER = "profiler.cli"


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``error: argument --batch: ...``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def whole(low: int = 1, high: int = MAX_CONTEXT):
    """argparse type: a whole number from ``low`` to ``high`` (the limit is named when refused)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {high:,}, got {_short(value)}")
        return value
    return parse


def number(low: float, high: float):
    """argparse type: a finite number above ``low`` and at most ``high``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text[:40]!r}") from None
        if not (math.isfinite(value) and low < value <= high):
            raise argparse.ArgumentTypeError(f"must be above {low:g} and at most {high:g}, got {text[:40]!r}")
        return value
    return parse


def _short(value: int) -> str:
    return f"{value:,}" if abs(value) < 10**30 else f"{str(value)[:12]}... ({len(str(value))} digits)"


def _gib(x: float) -> str:
    return f"{x / 2**30:,.2f} GiB"


@command("list")
def _list(a):
    from . import hub

    return {"models": list(profiles.model_names()), "hub_cache": hub.cached_ids(), "gpus": list(profiles.gpus()),
            "weight_formats": list(profiles.formats().formats), "kv_dtypes": list(api.kvmod.KV_DTYPES),
            "engines": list(api.kvmod.ENGINES)}


@command("inspect")
def _inspect(a):
    out = api.inspect_model(a.model, kv_dtype=a.kv_dtype, engine=a.engine, context=a.context, batch=a.batch,
                            weights=a.weights)
    spec = api.resolve_model(a.model)
    out["vision_tokens_per_image"] = spec.vision_tokens_per_image or None
    out["params_source"] = "analytic (planner/params.py)"
    if a.verify:
        out.update(_verify(a.model, spec))
    return out


def _verify(model, spec) -> dict:
    """The analytic count against transformers' meta-device build: the profiler's hook
    (profiler/cli.py registers it; torch and transformers are imported only when it runs)."""
    if not isinstance(model, str):
        raise PlannerInputError("--verify", "a what-if model (--kv-heads) has no config transformers could build",
                                "drop --kv-heads")
    if "verify" not in HOOKS:
        raise PlannerInputError("--verify", "needs the profiler, which this entry point did not load",
                                "run python -m planner inspect ... --verify")
    return HOOKS["verify"](spec, profiles.model_config(model))


@command("capacity")
def _capacity(a):
    return api.capacity(a.model, a.gpu, tp=a.tp, pp=a.pp, weights=a.weights, kv_dtype=a.kv_dtype,
                        gpu_memory_utilization=a.gpu_memory_utilization, max_model_len=a.max_model_len,
                        engine=a.engine, engine_version=a.engine_version, entry_point=a.entry_point,
                        max_num_batched_tokens=a.max_num_batched_tokens, max_num_seqs=a.max_num_seqs,
                        block_size=a.block_size, enforce_eager=a.enforce_eager,
                        mem_fraction_static=a.mem_fraction_static,
                        free_gpu_memory_fraction=a.free_gpu_memory_fraction)


@command("fit")
def _fit(a):
    kw = {"tp": a.tp, "pp": a.pp, "kv_dtype": a.kv_dtype, "engine": a.engine}
    if a.weights:
        kw["weights"] = a.weights
    return api.fit(a.model, a.gpu, a.batch, a.prompt, a.output, **kw)


def _print_human(name: str, out) -> None:
    if name == "list":
        for k, v in out.items():
            print(f"{k}:\n  " + ("\n  ".join(v) or "(none)"))
        return
    if name == "plan" and isinstance(out, dict):
        for line in _plan_headline(out):
            print(line)
        print()
    for k, v in out.items():
        print(f"{k:32s} {_human(k, v)}")


def _finite_or_null(v):
    """JSON has no NaN or Infinity: a figure that is not a number (a cost without a price, a latency of an unbounded
    queue) is printed as null."""
    if isinstance(v, dict):
        return {k: _finite_or_null(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite_or_null(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _human(k: str, v) -> str:
    """One value as a person reads it, the unit from the key's suffix (SI inside, ms / GiB here)."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, dict | list):
        return json.dumps(v)
    if isinstance(v, int | float) and (k.endswith("_bytes") or k.endswith("_bytes_per_gpu")) and math.isfinite(v):
        return f"{_gib(v)}  ({v:,.0f} B)"
    if isinstance(v, int):
        return f"{v:,}"
    if not isinstance(v, float):
        return str(v)
    if not math.isfinite(v):
        return "-" if math.isnan(v) else str(v)  # NaN: no such figure (a cost without a price)
    if k.endswith("_bytes") or k.endswith("_bytes_per_gpu"):
        return f"{_gib(v)}  ({v:,.0f} B)"
    if k.endswith("_bytes_per_s"):
        return f"{v / 1e9:,.1f} GB/s"
    if k.endswith("_flops_per_s"):
        return f"{v / 1e12:,.1f} TFLOP/s"
    if k.endswith("_flops"):
        return f"{v / 1e12:,.3f} TFLOP"
    if k.endswith("_per_s"):
        return f"{v:,.2f} /s"
    if k.startswith(("cost_usd", "usd_", "deployment_usd")) or "_usd_" in k:
        return f"${v:,.4f}" if v or not k.endswith("usd_per_hour") else "no price (none in the GPU's profile)"
    if k.endswith("_s"):
        return f"{v * 1e3:,.2f} ms" if abs(v) < 10 else f"{v:,.2f} s"
    if k.endswith(("_share_of_gpu_time", "_fraction")):
        return f"{v:.1%}"
    return f"{v:,.6g}"


def _plan_headline(p: dict) -> list[str]:
    """What a plan answers, first: fits, the latency a benchmark would measure with its band, cost. A batch
    over the engine's KV pool still runs when at least one request fits (PlanResult.runs): the engine holds
    what fits and queues the rest, and the latency shown is the simulation's with that queue, as on the
    dashboard, and so are the throughput and cost (what that queue sustains)."""
    ms = lambda x: f"{x * 1e3:,.1f} ms" if math.isfinite(x) else "-"  # noqa: E731
    lines = [("fits: yes" if p.get("fits") else f"fits: NO - {p.get('reason', '')}")]
    lines += [f"{'start':10s} {note}" for note in p.get("notes") or ()]  # what the engine needs to start
    if not p.get("fits") and not p.get("runs"):
        return lines
    if not p.get("fits"):
        lines.append(f"{'queued':10s} requests queue because the batch of {p['batch']:,} exceeds the KV pool: the engine "
                     f"holds {p['max_batch']:,} at a time and queues the rest; the latency below is simulated with "
                     "that queue")
    bands = (p.get("latency_bands") or {}) if p.get("fits") else {}
    for metric, key, label in (("ttft", "ttft_s", "TTFT"), ("tpot", "tpot_s", "TPOT"), ("e2e", "e2e_latency_s", "end-to-end")):
        line = f"{label:10s} {ms(p[key])} mean"
        if f"{metric}_p90_s" in p:
            line += f", p90 {ms(p[f'{metric}_p90_s'])}"
        b = bands.get(metric)
        if b:
            caveat = b.get("caveat") if metric == "ttft" else ""  # said once: no runs on this GPU, or the roofline
            line += (f"; real runs land {ms(b['low_s'])} to {ms(b['high_s'])} ({b['coverage']}, {b['n']:,} held-out runs"
                     + (f"; {caveat}" if caveat else "") + ")")
        lines.append(line)
    lines.append(f"{'':10s} {p.get('latency_source', '')}")
    lines.append(f"{'TTFT floor':10s} {ms(p['ttft_lower_bound_s'])} (one prompt, nothing queued; the batch's decodes share its passes)")
    queued = "" if p.get("fits") else f" (the engine holds {p['max_batch']:,} at a time and queues the rest)"
    lines.append(f"{'throughput':10s} {p['deployment_output_tokens_per_s']:,.0f} output tokens/s, "
                 f"{p['deployment_requests_per_s']:,.2f} requests/s on {p['replicas']} replica(s){queued}")
    if not p["usd_per_hour"]:  # no price: $0 would read as free
        where = (f"its profile (profiles/gpus/{p['gpu']}.json); define the GPU with --gpu-file or the --gpu-* figures "
                 "and --gpu-price to price it" if p["gpu"] in profiles.gpus()  # bundled; user-defined ones are not
                 else "its definition; give --gpu-price (or price_usd_per_gpu_hour in the --gpu-file)")
        lines.append(f"{'cost':10s} - : {p['gpu']} has no price in {where}")
        return lines
    lines.append(f"{'cost':10s} ${p['cost_usd_per_1m_output_tokens']:,.3f} per 1M output tokens, "
                 f"${p['deployment_usd_per_hour']:,.2f} per hour")
    return lines


def build_parser(extensions: tuple[str, ...] = EXTENSIONS_CORE) -> argparse.ArgumentParser:
    p = Parser(prog="python -m planner",
                                description="KV-cache memory and throughput capacity planner for LLM inference.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, gpu=False):
        sp.add_argument("model", help="bundled model name (see `list`), a path to a config.json / folder, or a "
                                      "Hugging Face Hub id (org/name[@revision])")
        if gpu:
            sp.add_argument("--gpu", default=None, help="GPU id (see `list`), e.g. H100-SXM; or a user-defined "
                                                        "GPU: --gpu-file or the --gpu-* figures")
            cli_gpu.add_flags(sp)
            sp.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
            sp.add_argument("--pp", type=int, default=1, help="pipeline-parallel stages (default 1)")
        sp.add_argument("--weights", default=None, help="weight format (default: the checkpoint's own, else bf16)")
        sp.add_argument("--kv-dtype", default="auto", help="KV cache dtype: auto (the model dtype), fp32, fp16, bf16, fp8, int8, int4")
        sp.add_argument("--kv-heads", type=int, default=None,
                        help="what-if: regroup attention to this many KV heads (1 = MQA; needs uptraining)")
        sp.add_argument("--json", action="store_true", help="print JSON (stable keys)")

    sub.add_parser("list", help="bundled models, Hub ids in the local Hugging Face cache, GPUs, weight formats"
                   ).add_argument("--json", action="store_true")
    sp = sub.add_parser("inspect", help="parameters, weight bytes and KV bytes of a model")
    common(sp)
    sp.add_argument("--engine", default="transformers", choices=api.kvmod.ENGINES)
    sp.add_argument("--context", type=int, default=4096, help="tokens per sequence for kv_cache_bytes")
    sp.add_argument("--batch", type=int, default=1, help="sequences for kv_cache_bytes")
    sp.add_argument("--verify", action="store_true", help="check the parameter count against transformers' "
                    "meta-device build of the model (needs torch; the build is cached); differences name the parts")
    sp = sub.add_parser("capacity", help="the KV-cache pool vLLM, SGLang or TensorRT-LLM allocates at start-up "
                                         "(tokens, max concurrency), with the rules of the engine version")
    common(sp, gpu=True)
    sp.add_argument("--engine", default="vllm", choices=("vllm", "sglang", "trtllm"))
    sp.add_argument("--engine-version", default=None, help="default: the newest release in profiles/engines/")
    sp.add_argument("--entry-point", default="serve", choices=("serve", "LLM"),
                    help="vllm serve (API server) or the offline LLM class: their scheduler defaults differ")
    sp.add_argument("--gpu-memory-utilization", type=float, default=None, help="default: the version's (0.9; 0.92 from 0.20)")
    sp.add_argument("--mem-fraction-static", type=float, default=None, help="SGLang (default: its rule for the GPU and TP)")
    sp.add_argument("--free-gpu-memory-fraction", type=float, default=None,
                    help="TensorRT-LLM's kv_cache_config.free_gpu_memory_fraction (default 0.9 of the memory its "
                         "profiling pass leaves free)")
    sp.add_argument("--max-model-len", type=whole(), default=None, help="tokens per request (default: derived from the config as vLLM does)")
    sp.add_argument("--max-num-batched-tokens", type=whole(), default=None, help="default: the version's for the GPU (TensorRT-LLM: max_num_tokens, 8192)")
    sp.add_argument("--max-num-seqs", type=whole(), default=None, help="default: the version's for the GPU (TensorRT-LLM: max_batch_size, 2048)")
    sp.add_argument("--block-size", type=whole(), default=None, help="default: 16 (64 for MLA where vLLM forces it; TensorRT-LLM: tokens_per_block 32)")
    sp.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (no graph estimate)")
    sp = sub.add_parser("fit", help="memory plan for a batch and length: fits or not, largest batch, longest context")
    common(sp, gpu=True)
    sp.add_argument("--engine", default="paged", choices=api.kvmod.ENGINES)
    sp.add_argument("--batch", type=int, required=True)
    sp.add_argument("--prompt", type=int, required=True)
    sp.add_argument("--output", type=int, default=0)
    for module in extensions:
        importlib.import_module(module).register(sub, command)
    return p


def main(argv: list[str] | None = None, extensions: tuple[str, ...] = EXTENSIONS_CORE) -> int:
    """Run one command: exit 0 with its result, 2 with one line naming the field, 130 on Ctrl-C.
    ``extensions``: the modules whose sub-commands join the core's (``python -m planner``, the
    program, adds the profiler's: planner/__main__.py)."""
    try:
        try:
            a = build_parser(extensions).parse_args(argv)
        except SystemExit as e:  # --help (0) or a refused argument (2, its one line already printed)
            return e.code if isinstance(e.code, int) else 2
        return _run(a)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` closed the pipe: the rest of the output is not wanted
        _quiet_stdout()
        return 0


def _run(a: argparse.Namespace) -> int:
    try:
        if hasattr(a, "gpu_file"):  # a user-defined GPU takes the place of --gpu (or joins the list)
            cli_gpu.apply(a, many=a.command in ("sweep", "slo"))
        if getattr(a, "kv_heads", None) is not None and isinstance(getattr(a, "model", None), str):
            a.model = api.resolve_model(a.model).with_kv_heads(a.kv_heads)  # the MQA/GQA what-if
        out = COMMANDS[a.command](a)
    except PlannerInputError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if out is None:
        return 0
    if getattr(a, "json", False):
        print(json.dumps(_finite_or_null(out), indent=2, default=float, allow_nan=False))
    else:
        _print_human(a.command, out)
    sys.stdout.flush()
    return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises no second BrokenPipeError."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests capture stdout)
        pass
