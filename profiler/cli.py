"""``python -m planner profile``: joined to the planner's CLI by the program (planner/__main__.py
passes this module to ``planner.cli.main``), with the hook behind ``inspect --verify``.

torch and transformers are imported only when the command runs, so every other sub-command
stays light and works without them.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from planner.errors import PlannerInputError

# What one profiling run may ask for: a batch and a prompt that could run on the largest GPU, and a
# matrix that finishes.
LIMITS = {"batch": 1 << 16, "prompt": 1 << 20, "output": 1 << 16, "steps": 1 << 16, "warmup": 1000}
MAX_POINTS = 1000


def int_list(field: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(dict.fromkeys(int(v) for v in str(text).split(",") if v.strip()))
    except ValueError:
        raise PlannerInputError(field, f"{str(text)[:40]!r} is not a comma-separated list of whole numbers",
                                "write e.g. 1,8,32") from None
    if not values or min(values) < 1 or max(values) > LIMITS[field]:
        raise PlannerInputError(field, f"{str(text)[:40]!r} needs whole numbers from 1 to {LIMITS[field]:,}",
                                "write e.g. 1,8,32")
    return values


def _check_counts(a) -> None:
    for name in ("output", "warmup", "steps"):
        v, low = getattr(a, name), 0 if name == "warmup" else 1
        if v is not None and not low <= v <= LIMITS[name]:
            raise PlannerInputError(name, f"{v:,} is out of range", f"give {low} to {LIMITS[name]:,}")


def main(argv: list[str] | None = None) -> int:
    """The whole program, as ``python -m planner`` runs it (the core's commands and the profiler's)."""
    from planner import cli
    return cli.main(argv, extensions=cli.EXTENSIONS_CORE + (cli.PROFILER,))


def _verify(spec, config: dict) -> dict:
    try:
        from profiler.metacount import verify
    except ImportError as e:
        raise PlannerInputError("--verify", f"needs torch and transformers ({e.name} is missing)",
                                "pip install -r requirements-dev.txt") from None
    return verify(spec, config)


def register(sub, command):
    """Add ``profile`` to the planner's sub-commands and lend ``inspect --verify`` its check."""
    from planner import cli
    cli.HOOKS["verify"] = _verify
    sp = sub.add_parser("profile", help="measure a model built from its config (random weights): memory, "
                                        "prefill and decode time over a batch x prompt matrix")
    sp.add_argument("model", help="bundled model name, a config.json, or a folder (a local checkpoint if it holds weights)")
    sp.add_argument("--device", default="cuda", help="cuda or cpu (default cuda)")
    sp.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"))
    sp.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes")
    sp.add_argument("--prompt", default="128,2048", help="comma-separated prompt lengths (tokens)")
    sp.add_argument("--output", type=int, default=128, help="output tokens: timed decode steps unless --steps is given")
    sp.add_argument("--attn", default="sdpa", choices=("sdpa", "eager"))
    sp.add_argument("--out", default=None, help="measurement folder (default profiles/measurements/<gpu-id or cpu>); "
                                                "a rerun with the same folder skips the points it already holds")
    sp.add_argument("--steps", type=int, default=None, help="timed decode steps per point (default: --output)")
    sp.add_argument("--warmup", type=int, default=3, help="untimed decode steps (and one untimed prefill) per point")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.add_argument("--json", action="store_true")

    @command("profile")
    def _profile(a):
        if a.device not in ("cpu", "cuda") and not a.device.startswith("cuda:"):
            raise PlannerInputError("device", f"{a.device!r} is not a device", "use cuda or cpu")
        _check_counts(a)
        batches, prompts = int_list("batch", a.batch), int_list("prompt", a.prompt)
        if len(batches) * len(prompts) > MAX_POINTS:
            raise PlannerInputError("batch", f"{len(batches)} batches x {len(prompts)} prompts is over "
                                    f"{MAX_POINTS} points", "profile fewer sizes per run")
        from . import run as prun  # torch, transformers: only now

        if a.device.startswith("cuda") and not prun.torch.cuda.is_available():
            raise PlannerInputError("device", "CUDA is not available on this machine", "use --device cpu")
        req = prun.Request(model=a.model, device=a.device, dtype=a.dtype, batches=batches,
                           prompts=prompts, output=a.output, attn=a.attn,
                           out_dir=Path(a.out) if a.out else None, steps=a.steps, warmup=a.warmup,
                           command="python -m planner " + shlex.join(sys.argv[1:]), progress=not a.no_progress)
        return prun.summarise(prun.run(req))
