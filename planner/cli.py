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
    """The analytic count against transformers' meta-device build (profiler/metacount.py: torch and
    transformers, imported only here; the build is cached per config hash under .cache/meta-params)."""
    if not isinstance(model, str):
        raise PlannerInputError("--verify", "a what-if model (--kv-heads) has no config transformers could build",
                                "drop --kv-heads")
    try:
        from profiler.metacount import verify
    except ImportError as e:
        raise PlannerInputError("--verify", f"needs torch and transformers ({e.name} is missing)",
                                "pip install -r requirements-dev.txt") from None
    return verify(spec, profiles.model_config(model))


@command("capacity")
def _capacity(a):
    return api.capacity(a.model, a.gpu, tp=a.tp, pp=a.pp, weights=a.weights, kv_dtype=a.kv_dtype,
                        gpu_memory_utilization=a.gpu_memory_utilization, max_model_len=a.max_model_len,
                        engine=a.engine, engine_version=a.engine_version, entry_point=a.entry_point,
                        max_num_batched_tokens=a.max_num_batched_tokens, max_num_seqs=a.max_num_seqs,
                        block_size=a.block_size, enforce_eager=a.enforce_eager,
                        mem_fraction_static=a.mem_fraction_static)


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
    for k, v in out.items():
        if isinstance(v, float) and k.endswith("_bytes") or k.endswith("_bytes_per_gpu"):
            print(f"{k:32s} {_gib(v)}  ({v:,.0f} B)")
        elif isinstance(v, dict | list):
            print(f"{k:32s} {json.dumps(v)}")
        else:
            print(f"{k:32s} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k:32s} {v}")


def build_parser() -> argparse.ArgumentParser:
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
    sp = sub.add_parser("capacity", help="the KV-cache pool vLLM or SGLang allocates at start-up (tokens, max "
                                         "concurrency), with the rules of the engine version")
    common(sp, gpu=True)
    sp.add_argument("--engine", default="vllm", choices=("vllm", "sglang"))
    sp.add_argument("--engine-version", default=None, help="default: the newest release in profiles/engines/")
    sp.add_argument("--entry-point", default="serve", choices=("serve", "LLM"),
                    help="vllm serve (API server) or the offline LLM class: their scheduler defaults differ")
    sp.add_argument("--gpu-memory-utilization", type=float, default=None, help="default: the version's (0.9; 0.92 from 0.20)")
    sp.add_argument("--mem-fraction-static", type=float, default=None, help="SGLang (default: its rule for the GPU and TP)")
    sp.add_argument("--max-model-len", type=whole(), default=None, help="tokens per request (default: derived from the config as vLLM does)")
    sp.add_argument("--max-num-batched-tokens", type=whole(), default=None, help="default: the version's for the GPU")
    sp.add_argument("--max-num-seqs", type=whole(), default=None, help="default: the version's for the GPU")
    sp.add_argument("--block-size", type=whole(), default=None, help="default: 16 (64 for MLA where vLLM forces it)")
    sp.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (no graph estimate)")
    sp = sub.add_parser("fit", help="memory plan for a batch and length: fits or not, largest batch, longest context")
    common(sp, gpu=True)
    sp.add_argument("--engine", default="paged", choices=api.kvmod.ENGINES)
    sp.add_argument("--batch", type=int, required=True)
    sp.add_argument("--prompt", type=int, required=True)
    sp.add_argument("--output", type=int, default=0)
    for module in EXTENSIONS:
        importlib.import_module(module).register(sub, command)
    return p


# Modules that add sub-commands: each has register(subparsers, command_decorator). The profiler
# module imports torch only when its command runs, so `list`/`inspect` stay light.
EXTENSIONS = ("planner.cli_serving", "planner.cli_validation", "planner.cli_engine", "planner.cli_commands",
              "profiler.cli")


def main(argv: list[str] | None = None) -> int:
    """Run one command: exit 0 with its result, 2 with one line naming the field, 130 on Ctrl-C."""
    try:
        try:
            a = build_parser().parse_args(argv)
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
        print(json.dumps(out, indent=2, default=float))
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
