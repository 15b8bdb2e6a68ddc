"""What the SLO search considers: every candidate deployment, or the ones the caller names.

By default (an empty tuple on any axis of ``slo.Candidates``):

* **GPUs**: every bundled profile. One without a price is listed once, rejected (it cannot be ranked
  by cost).
* **TP**: 1, 2, 4, 8 where the degree splits the attention heads (``memory.check_parallelism``). TP 16
  (two nodes) is left out: one node's NVLink domain ends at 8 on the bundled GPUs.
* **PP**: only where no single node (TP 8, or the largest TP that splits the heads) can hold the
  weights of that format on that GPU: then that TP with the fewest pipeline stages whose weights fit
  (powers of two up to ``MAX_PP``) and twice that. A PP list the caller gives applies to every TP.
* **Weight formats**: what the GPU runs well: bf16 everywhere; fp8 and fp8-block where the profile has
  an fp8 tensor-core peak; and the checkpoint's own format (``api.default_weights``).
* **KV dtype**: bf16, and fp8 where the GPU has fp8.
* Expert parallelism is not searched: an MoE model's experts are split by TP, as vLLM does without
  ``--enable-expert-parallel``.

A list the caller gives is taken as it is (a TP that does not divide the heads, or a format unknown
to the table, becomes a rejected row with the input error's message).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import api, profiles
from .errors import PlannerInputError
from .gpus import GpuSpec
from .memory import Deployment, check_parallelism
from .slo_bound import weights_per_gpu
from .spec import ModelSpec

DEFAULT_TPS = (1, 2, 4, 8)
MAX_PP = 8              # pipeline stages tried when one node cannot hold the weights
FP8_FORMATS = ("fp8", "fp8-block")
HOLD_FRACTION = 0.9     # of a GPU's memory the weights may take (vLLM's default gpu_memory_utilization was 0.9 before 0.20, 0.92 since)


@dataclass(frozen=True)
class Point:
    """One candidate: a GPU and a deployment, or the input error that makes it impossible."""

    gpu: str
    tp: int
    pp: int
    weights: str
    kv_dtype: str
    error: str = ""
    note: str = ""


def formats_for(spec: ModelSpec, gpu: GpuSpec) -> tuple[str, ...]:
    """The checkpoint's own format, bf16, and the fp8 formats where the GPU has fp8 tensor cores."""
    fp8 = FP8_FORMATS if gpu.has_native("fp8") else ()
    return tuple(dict.fromkeys((api.default_weights(spec), "bf16", *fp8)))


def kv_dtypes_for(gpu: GpuSpec) -> tuple[str, ...]:
    return ("bf16", "fp8") if gpu.has_native("fp8") else ("bf16",)


def tps_for(spec: ModelSpec) -> tuple[int, ...]:
    """The default TP degrees that split the model's heads (vLLM's rule)."""
    out = []
    for tp in DEFAULT_TPS:
        try:
            check_parallelism(spec, Deployment(tp=tp))
        except PlannerInputError:
            continue
        out.append(tp)
    return tuple(out)


def pps_for(spec: ModelSpec, gpu: GpuSpec, fmt: str, tp: int) -> tuple[int, ...]:
    """(1,) when ``tp`` GPUs can hold the weights (within ``HOLD_FRACTION`` of their memory); else the
    fewest stages whose weights fit at ``tp`` and twice that (within the model's layers and ``MAX_PP``)."""
    room = HOLD_FRACTION * gpu.total_memory_bytes
    if weights_per_gpu(spec, fmt, tp, 1) <= room:
        return (1,)
    pps = [pp for pp in (2, 4, 8) if pp <= min(MAX_PP, spec.num_layers)]
    fits = [pp for pp in pps if weights_per_gpu(spec, fmt, tp, pp) <= room]
    if not fits:
        return (pps[-1],) if pps else (1,)  # rejected later for memory, with the figures
    i = pps.index(fits[0])
    return tuple(pps[i:i + 2])


def _checked(spec: ModelSpec, gpu: str, tp: int, pp: int, fmt: str, kvd: str, note: str = "") -> Point:
    try:
        profiles.formats().get(fmt)
        check_parallelism(spec, Deployment(kv_dtype=kvd, tp=tp, pp=pp))  # the Deployment checks the KV dtype
    except PlannerInputError as e:
        return Point(gpu, tp, pp, fmt, kvd, error=str(e))
    return Point(gpu, tp, pp, fmt, kvd, note=note)


def points(spec: ModelSpec, gpus: tuple[str, ...], tps: tuple[int, ...], pps: tuple[int, ...],
           weights: tuple[str, ...], kv_dtypes: tuple[str, ...]) -> tuple[list[Point], list[tuple[str, str]]]:
    """Every candidate of the space, and (gpu, reason) for GPUs rejected whole (unknown, no price)."""
    out: list[Point] = []
    whole: list[tuple[str, str]] = []
    tp_list = tps or tps_for(spec)
    node_tp = max(tps_for(spec))  # PP only beyond the largest single-node TP (TP 1 always splits the heads)
    for name in gpus or tuple(profiles.gpus()):
        try:
            g = profiles.gpu(name)
        except PlannerInputError as e:
            whole.append((name, str(e)))
            continue
        if not g.price_usd_per_hour:
            whole.append((g.id, f"{g.id} has no price in its profile: it cannot be ranked by cost"))
            continue
        for fmt in weights or formats_for(spec, g):
            for tp in tp_list:
                stages, note = pps or (1,), ""
                if not pps and tp == node_tp:
                    stages = pps_for(spec, g, fmt, tp) if _known(fmt) else (1,)
                    note = "" if stages == (1,) else f"PP: one node of {tp} GPUs cannot hold the {fmt} weights"
                out += [_checked(spec, g.id, tp, pp, fmt, kvd, note) for pp in stages
                        for kvd in kv_dtypes or kv_dtypes_for(g)]
    return out, whole


def _known(fmt: str) -> bool:
    try:
        profiles.formats().get(fmt)
    except PlannerInputError:
        return False
    return True


def space_size(n_gpus: int, n_tps: int, n_weights: int, n_kv: int) -> int:
    """GPU x TP x format x KV dtype combinations of a request (an empty axis counts as its default's
    largest size; the pipeline stages added where one node cannot hold the weights are not counted)."""
    return ((n_gpus or len(profiles.gpus())) * (n_tps or len(DEFAULT_TPS)) * (n_weights or 2 + len(FP8_FORMATS))
            * (n_kv or 2))
