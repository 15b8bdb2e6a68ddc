"""The sidebar's shared choices: widget keys in st.session_state, mirrored into st.query_params.

The sidebar is drawn by app.py on every run, before the page, so its widgets (and their
values) persist across pages. On a session's first run the URL's query parameters are read
into the widgets' keys; a bad parameter shows a warning and falls back to the default. After
every run the current choices are written back, so the page URL carries the plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import streamlit as st

from dashboard import core
from dashboard.fmt import plain
from planner import kv as kvmod
from planner import profiles
from planner.configread import shown
from planner.errors import PlannerInputError

TP_OPTIONS = (1, 2, 4, 8, 16)
INT_LIMITS = {"gpus": (1, 4096), "batch": (1, 65536), "prompt": (1, 1 << 20), "output": (1, 1 << 20)}
DEFAULTS = {"tp": 1, "gpus": 1, "kv": "bf16", "engine": "paged", "batch": 32, "prompt": 1024, "output": 256}
PREFERRED_MODELS = ("Llama-3.1-8B", "Meta-Llama-3.1-8B", "Qwen3-8B", "Mistral-7B-v0.1")
PREFERRED_GPUS = ("H100-SXM", "H100-SXM-80GB", "A100-SXM-80GB")
PARAMS = ("model", "gpu", "gpus", "tp", "weights", "kv", "engine", "batch", "prompt", "output")


def key(name: str) -> str:
    return f"sb_{name}"


@dataclass(frozen=True)
class Selection:
    """One request: what every page reads. ``text`` is the uploaded config ('' for a bundled model)."""

    model: str
    text: str
    gpu: str
    gpus: int
    tp: int
    weights: str
    kv_dtype: str
    engine: str
    batch: int
    prompt: int
    output: int

    @property
    def dep(self) -> tuple:
        """(gpu, tp, weights, kv_dtype, engine): the deployment part of the core calls."""
        return (self.gpu, self.tp, self.weights, self.kv_dtype, self.engine)

    def as_dict(self) -> dict:
        return asdict(self)


def model_names() -> tuple[str, ...]:
    return profiles.model_names()


def gpu_ids() -> tuple[str, ...]:
    return tuple(profiles.gpus())


def format_ids() -> tuple[str, ...]:
    return tuple(profiles.formats().formats)


def _first(preferred: tuple[str, ...], available: tuple[str, ...]) -> str:
    for p in preferred:
        if p in available:
            return p
    return available[0]


@st.cache_data(ttl=30, show_spinner=False)
def nvml_gpu() -> dict | None:
    """The first GPU NVML sees, with its free memory, or None (no driver, no GPU, no pynvml)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            if pynvml.nvmlDeviceGetCount() < 1:
                return None
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else str(name)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            return {"name": name, "free_bytes": float(mem.free), "total_bytes": float(mem.total),
                    "count": int(pynvml.nvmlDeviceGetCount())}
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML is the normal case (CI, laptops)
        return None


def _defaults(nvml: dict | None) -> dict:
    names, gids = model_names(), gpu_ids()
    gpu = _first(PREFERRED_GPUS, gids)
    if nvml:
        match = profiles.gpu_for_nvml_name(nvml["name"])
        if match is not None:
            gpu = match.id
    fmts = format_ids()
    return {**DEFAULTS, "model": _first(PREFERRED_MODELS, names), "gpu": gpu,
            "weights": "bf16" if "bf16" in fmts else fmts[0]}


def _parse_param(name: str, raw: str) -> object:
    """A query parameter's value as the widget holds it; PlannerInputError when invalid."""
    if name == "model":
        low = {n.lower(): n for n in model_names()}
        if raw.lower() not in low:
            raise PlannerInputError("model", f"{raw[:120]!r} is not a bundled model", "pick one from the sidebar")
        return low[raw.lower()]
    if name == "gpu":
        return profiles.gpu(raw).id
    if name == "weights":
        return profiles.formats().get(raw).id
    if name == "kv":
        return kvmod.kv_dtype(raw).name
    if name == "engine":
        if raw not in kvmod.ENGINES:
            raise PlannerInputError("engine", f"unknown engine {raw!r}", f"choose one of {', '.join(kvmod.ENGINES)}")
        return raw
    try:
        value = int(raw)
    except ValueError:
        raise PlannerInputError(name, f"{raw[:40]!r} is not a whole number") from None
    if name == "tp":
        if value not in TP_OPTIONS:
            raise PlannerInputError("tp", f"{shown(value)} is not offered", f"choose one of {TP_OPTIONS}")
        return value
    lo, hi = INT_LIMITS[name]
    if not lo <= value <= hi:
        raise PlannerInputError(name, f"{shown(value)} is out of range", f"use {lo:,} to {hi:,}")
    return value


def param_warning(name: str, raw: str, e: PlannerInputError) -> str:
    """The warning for an ignored URL parameter. The value comes from whoever wrote the link: it is
    shown as plain text (fmt.plain), never as markdown."""
    short = raw if len(raw) <= 120 else raw[:120] + "..."
    return (f"URL parameter {plain(f'{name}={short}')} ignored: {plain(e.problem[:300])}"
            + (f" ({plain(e.fix)})" if e.fix else ""))


def init() -> None:
    """Seed the widget keys once per session: defaults, then whatever valid the URL says."""
    if st.session_state.get("_state_ready"):
        return
    values = _defaults(nvml_gpu())
    warnings = []
    qp = st.query_params.to_dict()
    for name in PARAMS:
        if name in qp:
            try:
                values[name] = _parse_param(name, str(qp[name]))
            except PlannerInputError as e:
                warnings.append(param_warning(name, str(qp[name]), e))
    for name, value in values.items():
        st.session_state.setdefault(key(name), value)
    st.session_state["_qp_warnings"] = warnings
    st.session_state["_state_ready"] = True


def _keep_valid(name: str, options: tuple, fallback) -> None:
    if st.session_state.get(key(name)) not in options:
        st.session_state[key(name)] = fallback if fallback in options else options[0]


def _gpu_label(gid: str) -> str:
    g = profiles.gpus()[gid]
    return f"{gid} ({g.total_memory_bytes / 1e9:.0f} GB)"


def _fmt_label(fid: str) -> str:
    return profiles.formats().formats[fid].label or fid


def _gpus_at_least_tp() -> None:
    """Raising TP raises the GPU count with it, so that one replica always fits the count."""
    ss = st.session_state
    ss[key("gpus")] = max(int(ss[key("gpus")]), int(ss[key("tp")]))


def _use_gpu(gpu_id: str, count: int) -> None:
    """Preselect the GPU NVML sees (and at most that many GPUs)."""
    st.session_state[key("gpu")] = gpu_id
    st.session_state[key("gpus")] = max(1, min(int(st.session_state[key("gpus")]), count))


def _upload() -> tuple[str, str] | None:
    """The uploaded config as (name, text), None when there is none; an error is shown, not raised."""
    up = st.file_uploader("Or upload a model's config.json", key=key("upload"),
                          help="Parsed as JSON only: nothing is executed. Limit 2 MB.")
    if up is None:
        return None
    try:
        return core.check_upload(up.getvalue(), up.name)
    except PlannerInputError as e:  # the same field, problem and fix the CLI prints
        st.error(f"Upload rejected: {plain(e)}")
    except Exception:  # noqa: BLE001 - a malformed config must never take the app down
        core.log.exception("upload %r failed", up.name)
        st.error("Upload rejected: the file is not a usable causal-LM config.")
    return None


def sidebar() -> Selection:
    """Draw the shared controls and return the current request."""
    init()
    names, gids, fmts = model_names(), gpu_ids(), format_ids()
    d = _defaults(None)
    _keep_valid("model", names, d["model"])
    _keep_valid("gpu", gids, d["gpu"])
    _keep_valid("weights", fmts, d["weights"])
    _keep_valid("kv", tuple(kvmod.KV_DTYPES), "bf16")
    _keep_valid("engine", kvmod.ENGINES, "paged")
    _keep_valid("tp", TP_OPTIONS, 1)
    with st.sidebar:
        nv = nvml_gpu()
        if nv:
            match = profiles.gpu_for_nvml_name(nv["name"])
            st.info(f"This machine: {nv['count']} x {nv['name']}, {nv['free_bytes'] / 2**30:.1f} GiB free of "
                    f"{nv['total_bytes'] / 2**30:.1f} GiB" + (f" (profile {match.id})" if match else " (no profile)"),
                    icon=":material/developer_board:")
            if match and st.session_state.get(key("gpu")) != match.id:
                st.button(f"Plan for this machine's {match.id}", key="sb_use_nvml", on_click=_use_gpu,
                          args=(match.id, nv["count"]), icon=":material/arrow_downward:")
        st.selectbox("Model", names, key=key("model"))
        uploaded = _upload()
        if uploaded:
            st.caption(f"Using the uploaded config: **{plain(uploaded[0])}**")
        st.selectbox("GPU", gids, key=key("gpu"), format_func=_gpu_label)
        c1, c2 = st.columns(2)
        c1.number_input("GPUs", min_value=1, max_value=INT_LIMITS["gpus"][1], step=1, key=key("gpus"),
                        help="Total GPUs; replicas = GPUs // (TP x PP)")
        c2.selectbox("TP", TP_OPTIONS, key=key("tp"), help="Tensor parallel degree per replica",
                     on_change=_gpus_at_least_tp)
        st.selectbox("Weights", fmts, key=key("weights"), format_func=_fmt_label)
        c1, c2 = st.columns(2)
        c1.selectbox("KV dtype", tuple(kvmod.KV_DTYPES), key=key("kv"))
        c2.selectbox("Engine", kvmod.ENGINES, key=key("engine"),
                     help="paged: vLLM's block-paged KV cache; transformers: HF generate's dynamic cache")
        st.number_input("Batch (concurrent requests)", min_value=1, max_value=INT_LIMITS["batch"][1], step=1,
                        key=key("batch"))
        c1, c2 = st.columns(2)
        c1.number_input("Prompt tokens", min_value=1, max_value=INT_LIMITS["prompt"][1], step=128, key=key("prompt"))
        c2.number_input("Output tokens", min_value=1, max_value=INT_LIMITS["output"][1], step=64, key=key("output"))
    ss = st.session_state
    model, text = (uploaded if uploaded else (ss[key("model")], ""))
    sel = Selection(model=model, text=text, gpu=ss[key("gpu")], gpus=int(ss[key("gpus")]), tp=int(ss[key("tp")]),
                    weights=ss[key("weights")], kv_dtype=ss[key("kv")], engine=ss[key("engine")],
                    batch=int(ss[key("batch")]), prompt=int(ss[key("prompt")]), output=int(ss[key("output")]))
    _write_query_params()
    st.session_state["selection"] = sel
    return sel


def _write_query_params() -> None:
    for name in PARAMS:
        value = str(st.session_state[key(name)])
        if st.query_params.get(name) != value:
            st.query_params[name] = value


def selection() -> Selection:
    """The request the sidebar built on this run (pages call this)."""
    return st.session_state["selection"]
