"""A user-defined GPU on the command line: ``--gpu-file my_gpu.json`` (the schema of profiles/gpus/*.json)
or ``--gpu-memory-gib --gpu-bandwidth-tbs --gpu-bf16-tflops [--gpu-fp8-tflops --gpu-price]``.

Either one builds a GpuSpec marked user-defined (gpus.GpuSpec.from_profile checks every figure), registers it
(profiles.register_gpu) and puts its id where ``--gpu`` would be: the only GPU of fit/plan/capacity, one
more candidate of sweep/slo.
"""

from __future__ import annotations

import argparse
import math

from . import profiles
from .errors import PlannerInputError
from .gpus import LIMITS, user_gpu

# flag: (unit factor to the GpuSpec figure, its LIMITS key, what the limit reads as)
FLAGS = {
    "--gpu-memory-gib": (2**30, "memory_bytes", "below 10 TB"),
    "--gpu-bandwidth-tbs": (1e12, "memory_bandwidth_bytes_per_s", "at most 1,000 TB/s"),
    "--gpu-bf16-tflops": (1e12, "peak_flops", "at most 1,000,000 TFLOPS"),
    "--gpu-fp8-tflops": (1e12, "peak_flops", "at most 1,000,000 TFLOPS"),
    "--gpu-price": (1.0, "price_usd_per_hour", "at most $10,000 per GPU-hour"),
}
REQUIRED = ("--gpu-memory-gib", "--gpu-bandwidth-tbs", "--gpu-bf16-tflops")


def _figure(flag: str):
    factor, limit, words = FLAGS[flag]

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text[:40]!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text[:40]!r}")
        if v * factor > LIMITS[limit]:
            raise argparse.ArgumentTypeError(f"must be {words}, got {text[:40]!r}")
        return v
    return parse


def add_flags(sp) -> None:
    g = sp.add_argument_group("user-defined GPU (instead of --gpu, or one more candidate for sweep/slo)")
    g.add_argument("--gpu-file", default=None, help="a GPU profile JSON (the schema of profiles/gpus/*.json)")
    g.add_argument("--gpu-memory-gib", type=_figure("--gpu-memory-gib"), default=None,
                   help="memory a program can use, GiB (2^30 bytes)")
    g.add_argument("--gpu-bandwidth-tbs", type=_figure("--gpu-bandwidth-tbs"), default=None,
                   help="memory bandwidth, TB/s (10^12 bytes/s)")
    g.add_argument("--gpu-bf16-tflops", type=_figure("--gpu-bf16-tflops"), default=None,
                   help="dense BF16 tensor-core peak, TFLOPS")
    g.add_argument("--gpu-fp8-tflops", type=_figure("--gpu-fp8-tflops"), default=None,
                   help="dense FP8 peak, TFLOPS (default: none, fp8 runs at the bf16 rate)")
    g.add_argument("--gpu-price", type=_figure("--gpu-price"), default=None, help="$ per GPU-hour (default: none)")


def user_spec(a: argparse.Namespace):
    """The GpuSpec the flags or the file define, or None when neither is given."""
    given = {f: getattr(a, f[2:].replace("-", "_"), None) for f in FLAGS}
    flags = [f for f, v in given.items() if v is not None]
    if a.gpu_file and flags:
        raise PlannerInputError(flags[0], "goes with the --gpu-* figures, not with --gpu-file",
                                "give the GPU either as a file or as flags")
    if a.gpu_file:
        return profiles.load_gpu_file(a.gpu_file)
    if not flags:
        return None
    missing = [f for f in REQUIRED if given[f] is None]
    if missing:
        raise PlannerInputError(missing[0], "is needed to define a GPU",
                                f"give {', '.join(REQUIRED)} (and optionally --gpu-fp8-tflops, --gpu-price)")
    return user_gpu(given["--gpu-memory-gib"], given["--gpu-bandwidth-tbs"], given["--gpu-bf16-tflops"],
                    given["--gpu-fp8-tflops"], given["--gpu-price"])


def apply(a: argparse.Namespace, many: bool) -> None:
    """Register the user-defined GPU and point ``a.gpu`` at it (a list entry when ``many``)."""
    spec = user_spec(a)
    search = getattr(a, "command", None) == "slo"  # no --gpu: the SLO search tries every bundled GPU
    if spec is None:
        if not a.gpu and not search:
            raise PlannerInputError("gpu", "no GPU given", "give --gpu (see `list`), --gpu-file, or --gpu-memory-gib "
                                    "--gpu-bandwidth-tbs --gpu-bf16-tflops")
        return
    gid = profiles.register_gpu(spec)
    if many:  # with no --gpu, the described GPU is the question: the search is over it alone
        a.gpu = [*(a.gpu or []), gid]
    elif a.gpu:
        raise PlannerInputError("gpu", f"both --gpu {a.gpu} and a user-defined GPU were given", "give one of them")
    else:
        a.gpu = gid
