"""``PlanRequest`` as flat text: URL query parameters (the dashboard) and ``python -m planner plan``
arguments (the CLI). One table maps every parameter to its field, so the two cannot drift.

Parameter names are the dashboard's long-standing URL keys (``kv`` for the KV dtype, ``prompt`` and
``output`` for token counts): links written before this module still open the same plan.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

from .errors import PlannerInputError, require_positive_int
from .memory import MAX_BATCH, MAX_CONTEXT, Deployment
from .request import MAX_GPUS, PlanRequest, Targets, Workload

DEFAULT_DEPLOYMENT = Deployment()
# (param, part of the request, field, kind): kind int, float, str, bool, ints (comma list)
TABLE = (
    ("model", "", "model", "str"), ("gpu", "", "gpu", "str"),
    ("batch", "workload", "batch", "int"), ("prompt", "workload", "prompt_tokens", "int"),
    ("output", "workload", "output_tokens", "int"),
    ("weights", "deployment", "weights", "str"), ("kv", "deployment", "kv_dtype", "str"),
    ("engine", "deployment", "engine", "str"), ("tp", "deployment", "tp", "int"),
    ("pp", "deployment", "pp", "int"), ("gpus", "", "gpus", "int"), ("simulate", "", "simulate", "bool"),
    ("server", "deployment", "server", "str"), ("server_version", "deployment", "server_version", "str"),
    ("entry_point", "deployment", "entry_point", "str"),
    ("gpu_memory_utilization", "deployment", "gpu_memory_utilization", "float"),
    ("block_size", "deployment", "block_size", "int"),
    ("max_num_batched_tokens", "deployment", "max_num_batched_tokens", "int"),
    ("max_num_seqs", "deployment", "max_num_seqs", "int"),
    ("cuda_graph_sizes", "deployment", "cuda_graph_sizes", "ints"),
    ("enable_mixed_chunk", "deployment", "enable_mixed_chunk", "bool"),
    ("batch_wait_timeout_iters", "deployment", "batch_wait_timeout_iters", "int"),
    ("batch_wait_max_tokens_ratio", "deployment", "batch_wait_max_tokens_ratio", "float"),
    ("mxfp4_moe_backend", "deployment", "mxfp4_moe_backend", "str"),
    ("async_scheduling", "deployment", "async_scheduling", "bool"),
    ("rate", "workload", "request_rate_per_s", "float"), ("distribution", "workload", "distribution", "str"),
    ("ttft", "slo", "ttft_s", "float"), ("tpot", "slo", "tpot_s", "float"), ("e2e", "slo", "e2e_s", "float"),
    ("percentile", "slo", "percentile", "int"),
)
# what a switch (kind bool) may say, in a link or on the command line (plan --async-scheduling on|off)
SWITCH_WORDS = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}
ALWAYS = ("model", "gpu", "batch", "prompt", "output", "weights", "kv", "engine", "tp")
PARAM_NAMES = tuple(t[0] for t in TABLE)
INT_MAX = {"batch": MAX_BATCH, "prompt": MAX_CONTEXT, "output": MAX_CONTEXT, "tp": 1024, "pp": 1024,
           "gpus": MAX_GPUS, "block_size": 4096, "max_num_batched_tokens": MAX_CONTEXT, "max_num_seqs": MAX_BATCH,
           "percentile": 100}
# the CLI's plan flags, in the order `to_argv` writes them
CLI_FLAGS = {"gpu": "--gpu", "batch": "--batch", "prompt": "--prompt", "output": "--output", "weights": "--weights",
             "kv": "--kv-dtype", "engine": "--engine", "server_version": "--engine-version", "tp": "--tp", "pp": "--pp",
             "gpus": "--gpus", "mxfp4_moe_backend": "--mxfp4-moe-backend", "async_scheduling": "--async-scheduling"}


def _part(req: PlanRequest, part: str):
    return req if not part else getattr(req, part)


def _text(value, kind: str) -> str:
    if kind == "bool":
        return "1" if value else "0"
    if kind == "ints":
        return ",".join(str(v) for v in value)
    if kind == "float":
        return repr(float(value))
    return str(value)


def to_params(req: PlanRequest) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, part, field, kind in TABLE:
        holder = _part(req, part)
        if holder is None:  # no SLO
            continue
        value = req.model_name if name == "model" else getattr(holder, field)
        default = _default(part, field)
        if name in ALWAYS or (value is not None and value != default):
            out[name] = _text(value, kind)
    return out


def _default(part: str, field: str):
    if part == "deployment":
        return getattr(DEFAULT_DEPLOYMENT, field)
    cls = {"workload": Workload, "slo": Targets, "": PlanRequest}[part]
    f = {f.name: f for f in fields(cls)}[field]
    return f.default


def parse_value(name: str, raw: str):
    """One parameter's text as its field holds it; PlannerInputError naming ``name`` when invalid."""
    kind = {t[0]: t[3] for t in TABLE}.get(name)
    if kind is None:
        raise PlannerInputError(name, "is not a plan parameter", f"use one of {', '.join(PARAM_NAMES)}")
    raw = str(raw).strip()
    if kind == "str":
        if not raw or len(raw) > 300:
            raise PlannerInputError(name, "must be 1 to 300 characters", "give a value")
        return raw
    if kind == "bool":
        if raw.lower() not in SWITCH_WORDS:
            raise PlannerInputError(name, f"{raw[:40]!r} is not 0 or 1", "write 1 (yes) or 0 (no)")
        return SWITCH_WORDS[raw.lower()]
    if kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise PlannerInputError(name, f"{raw[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise PlannerInputError(name, f"{raw[:40]!r} is not a finite number")
        return value
    if kind == "ints":
        return tuple(_int(name, x) for x in raw.split(",") if x.strip())
    return _int(name, raw)


def _int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise PlannerInputError(name, f"{raw[:40]!r} is not a whole number", "give a positive integer") from None
    return require_positive_int(name, value, maximum=INT_MAX.get(name, MAX_CONTEXT))


def from_params(params: dict[str, str]) -> PlanRequest:
    for name in ("model", "gpu", "batch", "prompt", "output"):
        if name not in params:
            raise PlannerInputError(name, "is missing", f"add {name}=...")
    parts: dict[str, dict] = {"": {}, "workload": {"request_rate_per_s": None}, "deployment": {}, "slo": {}}
    for name, part, field, _ in TABLE:
        if name in params:
            parts[part][field] = parse_value(name, params[name])
    top = parts[""]
    slo = Targets(**parts["slo"]) if parts["slo"] else None
    return PlanRequest(top.pop("model"), top.pop("gpu"), Workload(**parts["workload"]),
                       replace(DEFAULT_DEPLOYMENT, **parts["deployment"]), slo=slo, **top)


def to_argv(req: PlanRequest) -> list[str]:
    """``python -m planner plan`` arguments of ``req``; a setting the CLI has no flag for is refused."""
    params = to_params(req)
    extra = sorted(set(params) - set(CLI_FLAGS) - {"model", "simulate"}
                   - ({"server"} if params.get("engine") == "paged" else set()))
    if extra:
        raise PlannerInputError(extra[0], "has no `plan` flag", "use planner.api.plan_request from Python")
    # the CLI's --engine names the serving engine of a paged plan (vllm, sglang, trtllm) or transformers
    if params.get("engine") == "paged":
        params["engine"] = params.pop("server", DEFAULT_DEPLOYMENT.server)
    argv = [params["model"]]
    for name, flag in CLI_FLAGS.items():
        if name in params:
            argv += [flag, params[name]]
    if not req.simulate:
        argv.append("--no-simulate")
    return argv
