"""One request: what a front end asks the planner (model, GPU, deployment, workload, SLO).

``PlanRequest`` is the one input of a single plan, shared by the CLI (``python -m planner plan``),
the dashboard (its sidebar builds one, its pages cache on it, its URL is ``to_params()``) and CSV
export (``api.plan_request(req).to_row()``). It is frozen, hashable and validated on creation:
an impossible value raises ``PlannerInputError(field, problem, fix)`` before anything is computed.

``Workload`` and ``Targets`` are the SLO search's own types (planner/slo.py), not copies: a closed
loop of ``batch`` clients (a plan, a serving benchmark at fixed concurrency) or an open loop at
``request_rate_per_s`` (the SLO search), prompt and output lengths, and latency targets.

Room for what comes next, without a rewrite: a request is a set of pools (``pools()``: today one,
serving both phases on one GPU type) plus techniques (``techniques``: today none). Disaggregated
prefill/decode and mixed GPU types become several ``Pool`` rows (role, GPU, deployment, GPUs);
expert parallelism across nodes a field of ``Deployment``; speculative decoding, prefix caching,
LoRA adapters and KV offload tiers become ``Technique`` entries, named in ``PLANNED_TECHNIQUES``
and refused by name until the core models them (a figure the planner cannot back is never shown).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace

from .errors import PlannerInputError, require_positive_int
from .memory import Deployment
from .slo import PERCENTILES, Targets, Workload  # noqa: F401 - one Workload, one Targets: the SLO search's
from .spec import ModelSpec

MAX_GPUS = 100_000
# what a later release models as a Technique (issue 12); each is refused by name until then
PLANNED_TECHNIQUES = ("speculative_decoding", "prefix_caching", "lora_adapters", "kv_offload_tiers")


@dataclass(frozen=True)
class Technique:
    """A serving technique with its settings as (name, value) text pairs (hashable). None is modelled
    yet: ``PLANNED_TECHNIQUES`` names those planned, and a request carrying one is refused."""

    name: str
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Pool:
    """GPUs of one type running one deployment for one role ("prefill+decode" today; "prefill" and
    "decode" once disaggregated serving is modelled). ``gpus`` None: one replica."""

    role: str
    gpu: str
    deployment: Deployment
    gpus: int | None = None


@dataclass(frozen=True)
class PlanRequest:
    """One deployment of one model at one operating point. ``model`` is a bundled name, a config
    path, a Hub id (``org/name``), or a ModelSpec (an uploaded config, a what-if); ``gpus`` the GPUs
    in all (None: one replica); ``simulate`` False keeps the mean-value latency only; ``slo`` the
    targets the result is checked against (None: none)."""

    model: str | ModelSpec
    gpu: str
    workload: Workload
    deployment: Deployment = Deployment()
    gpus: int | None = None
    simulate: bool = True
    slo: Targets | None = None
    techniques: tuple[Technique, ...] = ()

    def __post_init__(self):
        if not isinstance(self.model, ModelSpec) and not (isinstance(self.model, str) and self.model.strip()):
            raise PlannerInputError("model", f"must be a model name or a ModelSpec, got {self.model!r}",
                                    "give a bundled name (see `list`), a config path or a Hub id")
        if not (isinstance(self.gpu, str) and self.gpu.strip()):
            raise PlannerInputError("gpu", f"must be a GPU id, got {self.gpu!r}", "see `python -m planner list`")
        for name, kind in (("workload", Workload), ("deployment", Deployment)):
            if not isinstance(getattr(self, name), kind):
                raise PlannerInputError(name, f"must be a {kind.__name__}", f"build it with planner.request.{kind.__name__}")
        if self.workload.batch is None:
            raise PlannerInputError("batch", "a plan needs the concurrent requests per replica", "give batch")
        if self.gpus is not None:
            gpus = require_positive_int("gpus", self.gpus, maximum=MAX_GPUS)
            per = self.deployment.tp * self.deployment.pp
            if gpus < per:
                raise PlannerInputError("gpus", f"{gpus} GPUs cannot hold one replica of TP={self.deployment.tp} x "
                                        f"PP={self.deployment.pp}", f"use at least {per} GPUs or lower tp/pp")
        if not isinstance(self.simulate, bool):
            raise PlannerInputError("simulate", f"must be True or False, got {self.simulate!r}")
        if self.slo is not None and not isinstance(self.slo, Targets):
            raise PlannerInputError("slo", "must be planner.request.Targets or None")
        for t in self.techniques:
            raise PlannerInputError("techniques", f"{getattr(t, 'name', t)!r} is not modelled yet "
                                    f"(planned: {', '.join(PLANNED_TECHNIQUES)})", "leave techniques empty")

    @property
    def model_name(self) -> str:
        return self.model.name if isinstance(self.model, ModelSpec) else self.model

    @property
    def replicas(self) -> int:
        """Whole replicas of TP x PP GPUs in ``gpus`` (1 when ``gpus`` is None)."""
        return 1 if self.gpus is None else self.gpus // (self.deployment.tp * self.deployment.pp)

    def pools(self) -> tuple[Pool, ...]:
        """The GPU pools of this request: one today (both phases, one GPU type)."""
        return (Pool("prefill+decode", self.gpu, self.deployment, self.gpus),)

    @property
    def key(self) -> str:
        """A stable digest of everything that changes the result (a ModelSpec by its full repr)."""
        model = repr(self.model) if isinstance(self.model, ModelSpec) else self.model
        text = "\x00".join([model, *(f"{k}={v}" for k, v in sorted(self.to_params().items()) if k != "model")])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def with_workload(self, **changes) -> PlanRequest:
        return replace(self, workload=replace(self.workload, **changes))

    def with_deployment(self, **changes) -> PlanRequest:
        return replace(self, deployment=replace(self.deployment, **changes))

    def to_params(self) -> dict[str, str]:
        """The request as flat text (URL query parameters, ``from_params``): the named fields always,
        the others only where they differ from their default. A ModelSpec is written by its name."""
        from .requestparams import to_params

        return to_params(self)

    @classmethod
    def from_params(cls, params: dict[str, str]) -> PlanRequest:
        """The request ``to_params`` wrote; unknown keys are ignored, a bad value names its field."""
        from .requestparams import from_params

        return from_params(params)

    def to_argv(self) -> list[str]:
        """The same request as ``python -m planner plan`` arguments (the CLI builds an equal request)."""
        from .requestparams import to_argv

        return to_argv(self)


def build(model: str | ModelSpec, gpu: str, batch: int, prompt: int, output: int, gpus: int | None = None,
          simulate: bool = True, slo: Targets | None = None, **dep_kw) -> PlanRequest:
    """A PlanRequest from the primitives the CLI and ``api.plan`` take; weights default to the
    checkpoint's own format (its quantization_config), else bf16, as ``api.default_weights`` says."""
    if "weights" not in dep_kw or dep_kw["weights"] is None:
        from . import api

        dep_kw["weights"] = api.default_weights(api.resolve_model(model))
    unknown = sorted(set(dep_kw) - {f.name for f in fields(Deployment)})
    if unknown:
        raise PlannerInputError(unknown[0], "is not a deployment setting",
                                f"use one of {', '.join(f.name for f in fields(Deployment))}")
    wl = Workload(None, prompt, output, batch=batch)
    return PlanRequest(model, gpu, wl, Deployment(**dep_kw), gpus=gpus, simulate=simulate, slo=slo)
