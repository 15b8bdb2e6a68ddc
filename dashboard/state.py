"""The sidebar's shared choices: widget keys in st.session_state, mirrored into st.query_params.

The sidebar is drawn by app.py on every run, before the page, so its widgets (and their
values) persist across pages. On a session's first run the URL's query parameters are read
into the widgets' keys; a bad parameter shows a warning and falls back to the default. After
every run the current choices are written back, so the page URL carries the plan.

The model is a bundled one, an uploaded config.json, or a Hugging Face Hub id (from the local cache, or
fetched when online: planner/hub.py). Whenever it changes, the weight format goes to the checkpoint's
own (planner.api.default_weights, the CLI's default). A GPU defined in the sidebar's form joins the GPU
list for the session (planner.gpus.user_gpu, the CLI's --gpu-* figures).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl, urlencode

import streamlit as st

from dashboard import core, i18n
from dashboard.fmt import plain
from dashboard.i18n import t
from planner import hub, profiles
from planner import kv as kvmod
from planner.configread import shown
from planner.errors import PlannerInputError
from planner.gpus import user_gpu
from planner.memory import SERVERS
from planner.planning import ENGINE_NAMES
from planner.request import PlanRequest
from planner.requestparams import parse_value

TP_OPTIONS = (1, 2, 4, 8, 16)
PP_OPTIONS = (1, 2, 4, 8)   # pipeline stages; the core checks them against the model's layers (memory.check_parallelism)
INT_LIMITS = {"gpus": (1, 4096), "batch": (1, 65536), "prompt": (1, 1 << 20), "output": (1, 1 << 20)}
KV_OPTIONS = ("auto", *kvmod.KV_DTYPES)  # "auto": what the engine allocates (planner/startup.py _kv_dtype)
DEFAULTS = {"tp": 1, "pp": 1, "gpus": 1, "kv": "auto", "engine": "paged", "server": "vllm", "batch": 32, "prompt": 1024,
            "output": 256, "hub": ""}
PREFERRED_MODELS = ("Llama-3.1-8B", "Meta-Llama-3.1-8B", "Qwen3-8B", "Mistral-7B-v0.1")
PREFERRED_GPUS = ("H100-SXM", "H100-SXM-80GB", "A100-SXM-80GB")
PARAMS = ("model", "hub", "upload", "gpu", "gpus", "tp", "pp", "weights", "kv", "engine", "server", "batch", "prompt",
          "output")
# the parameters a remedy or a saved plan may set on the sidebar (the model stays as it is)
SETTABLE = ("gpu", "gpus", "tp", "pp", "weights", "kv", "engine", "server", "batch", "prompt", "output")
SERVER_NAMES = {k: ENGINE_NAMES[k] for k in SERVERS}   # vLLM, SGLang, TensorRT-LLM
MAX_SAVED = 4          # plans the Compare page holds (the newest)
MAX_SESSION_GPUS = 8   # user-defined GPUs one session keeps (the newest)
# the GPU form's fields: (label, key, default, min, max, help); the limits are gpus.LIMITS in these units
GPU_FORM = (("Memory (GiB)", "mem", 80.0, 0.5, 9000.0, "what a program can use, GiB (2^30 bytes); below 10 TB"),
            ("Bandwidth (TB/s)", "bw", 3.35, 0.01, 1000.0, "memory bandwidth, 10^12 bytes/s"),
            ("BF16 dense TFLOPS", "bf16", 989.0, 0.1, 1e6, "dense tensor-core peak (no sparsity)"),
            ("FP8 dense TFLOPS (0: none)", "fp8", 0.0, 0.0, 1e6, "0: fp8 runs at the BF16 rate"),
            ("$ per GPU-hour (0: none)", "price", 0.0, 0.0, 1e4, "0: no cost figures"))


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
    pp: int = 1
    server: str = "vllm"   # the serving engine of a paged plan (its KV pool, scheduler and fitted costs)

    @property
    def kv(self) -> str:
        """The KV dtype the pages compute with: ``kv_dtype``, its "auto" resolved to the cache the serving engine
        allocates (core.kv_of); the request, the URL and the CSV keep "auto" itself."""
        return core.kv_of(self.model, self.text, self.kv_dtype, self.engine, self.server, self.weights)

    @property
    def dep(self) -> tuple:
        """(gpu, tp, weights, kv dtype, engine): the deployment part of the core calls (the pages other than
        the plan's study one replica's TP; PP is the Plan page's, through ``request``)."""
        return (self.gpu, self.tp, self.weights, self.kv, self.engine)

    def request(self, simulate: bool = True, stages: bool = True) -> PlanRequest:
        """The one PlanRequest of these choices (what the plan page, the URL and the CSV share); ``stages=False``:
        one pipeline stage, for the pages that study one replica's TP group."""
        return core.request(self.model, self.text, self.gpu, self.tp, self.weights, self.kv_dtype, self.engine,
                            self.batch, self.prompt, self.output, self.gpus, simulate, pp=self.pp if stages else 1,
                            server=self.server)

    def as_dict(self) -> dict:
        return asdict(self)


def model_names() -> tuple[str, ...]:
    return profiles.model_names()


def gpu_ids() -> tuple[str, ...]:
    return tuple(profiles.gpus())


def session_gpu_ids() -> tuple[str, ...]:
    """The bundled GPUs and this session's user-defined ones (registered again on every run, so that a
    long-lived server that dropped one still knows it)."""
    ids = []
    for figs in st.session_state.get("_user_gpus", []):
        try:
            ids.append(profiles.register_gpu(_form_gpu(figs)))
        except PlannerInputError:
            continue
    return gpu_ids() + tuple(ids)


def _form_gpu(figs: dict):
    """A user-defined GPU from the form's figures; its id carries a hash of them, so that two sessions'
    GPUs of one name never share a cached result."""
    name = profiles.clean_name(figs.get("name") or "gpu", 24).replace(" ", "-").strip(".-_+") or "gpu"
    digest = hashlib.sha256(repr(sorted(figs.items())).encode()).hexdigest()[:6]
    return user_gpu(figs["mem"], figs["bw"], figs["bf16"], figs["fp8"] or None, figs["price"] or None,
                    gpu_id=f"user-{name}-{digest}", where="GPU form")


def format_ids(*extra: str | None) -> tuple[str, ...]:
    """The bundled weight formats, then ``extra`` ones that are valid but not bundled (a checkpoint's
    own GPTQ/AWQ variant, e.g. gptq-3bit-g64: FormatTable.get builds it from its name)."""
    table = profiles.formats()
    more = []
    for fid in extra:
        try:
            more.append(table.get(fid).id if fid else None)
        except PlannerInputError:
            pass
    return tuple(dict.fromkeys([*table.formats, *(f for f in more if f)]))


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
    if name == "upload":
        if raw not in ("0", "1"):
            raise PlannerInputError("upload", f"{raw[:40]!r} is not 0 or 1", "write 1 (an uploaded model) or leave it out")
        return raw
    if name == "hub":
        if raw and not hub.parse_id(raw):
            raise PlannerInputError("hub", f"{raw[:120]!r} is not a Hugging Face Hub id", "write it as org/name")
        return raw
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
        return "auto" if str(raw).lower() == "auto" else kvmod.kv_dtype(raw).name
    if name == "engine":
        if raw not in kvmod.ENGINES:
            raise PlannerInputError("engine", f"unknown engine {raw!r}", f"choose one of {', '.join(kvmod.ENGINES)}")
        return raw
    if name == "server":
        if raw not in SERVERS:
            raise PlannerInputError("server", f"unknown serving engine {raw[:40]!r}", f"choose one of {', '.join(SERVERS)}")
        return raw
    value = parse_value(name, raw)  # the request's own parser (planner/requestparams.py)
    if name == "tp":
        if value not in TP_OPTIONS:
            raise PlannerInputError("tp", f"{shown(value)} is not offered", f"choose one of {TP_OPTIONS}")
        return value
    if name == "pp":
        if value not in PP_OPTIONS:
            raise PlannerInputError("pp", f"{shown(value)} is not offered", f"choose one of {PP_OPTIONS}")
        return value
    lo, hi = INT_LIMITS[name]
    if not lo <= value <= hi:
        raise PlannerInputError(name, f"{shown(value)} is out of range", f"use {lo:,} to {hi:,}")
    return value


def param_warning(name: str, raw: str, e: PlannerInputError) -> str:
    """The warning for an ignored URL parameter. The value comes from whoever wrote the link: it is
    shown as plain text (fmt.plain), never as markdown."""
    short = raw if len(raw) <= 120 else raw[:120] + "..."
    return (t("URL parameter {param} ignored: {problem}").format(param=plain(f"{name}={short}"),
                                                                   problem=plain(e.problem[:300]))
            + (f" ({plain(e.fix)})" if e.fix else ""))


def init() -> None:
    """Seed the widget keys once per session: defaults, then whatever valid the URL says."""
    if st.session_state.get("_state_ready"):
        return
    values = _defaults(nvml_gpu())
    warnings, read = [], set()
    qp = st.query_params.to_dict()
    if qp.get("upload") == "1" and qp.get("model"):  # the link's model was an upload: it cannot travel in a URL
        st.session_state["_link_upload"] = str(qp["model"])[:120]
        qp = {k: v for k, v in qp.items() if k not in ("model", "upload")}
    st.session_state["_saved"] = read_saved(st.query_params.get_all("cmp"), warnings)
    for name in PARAMS:
        if name in qp:
            try:
                values[name] = _parse_param(name, str(qp[name]))
                read.add(name)
            except PlannerInputError as e:
                warnings.append(param_warning(name, str(qp[name]), e))
    for name, value in values.items():
        st.session_state.setdefault(key(name), value)
    if "weights" in read:  # the link chose the weights: the checkpoint's default must not replace them
        st.session_state["_weights_for"] = _identity(values.get("hub") or values["model"], "")
    if st.session_state.get("_lang_warning"):  # i18n.init read lang= before the page list was built
        warnings.insert(0, st.session_state.pop("_lang_warning"))
    st.session_state["_qp_warnings"] = warnings
    st.session_state["_state_ready"] = True


def _keep_valid(name: str, options: tuple, fallback) -> None:
    if st.session_state.get(key(name)) not in options:
        st.session_state[key(name)] = fallback if fallback in options else options[0]


def gpu_label(gid: str) -> str:
    """A GPU as the lists show it: its id and memory in GiB (2^30 bytes), as every figure on screen."""
    g = profiles.gpu(gid)
    return f"{gid} ({g.total_memory_bytes / 2**30:.0f} GiB" + (t(", user-defined)") if g.user_defined else ")")


def _fmt_label(fid: str) -> str:
    return profiles.formats().get(fid).label or fid


def _gpus_at_least_tp() -> None:
    """Raising TP or PP raises the GPU count with it, so that one replica (TP x PP GPUs) always fits the count."""
    ss = st.session_state
    ss[key("gpus")] = max(int(ss[key("gpus")]), int(ss[key("tp")]) * int(ss.get(key("pp"), 1)))


def _use_gpu(gpu_id: str, count: int) -> None:
    """Preselect the GPU NVML sees (and at most that many GPUs)."""
    st.session_state[key("gpu")] = gpu_id
    st.session_state[key("gpus")] = max(1, min(int(st.session_state[key("gpus")]), count))


def _upload() -> tuple[str, str] | None:
    """The uploaded config as (name, text), None when there is none; an error is shown, not raised."""
    up = st.file_uploader(t("Or upload a model's config.json"), key=key("upload"),
                          help=t("Parsed as JSON only: nothing is executed. Limit 2 MB."))
    st.session_state.pop("_upload_error", None)
    if up is None:
        return None
    try:
        got = core.check_upload(up.getvalue(), up.name)
        st.session_state.pop("_link_upload", None)  # the link's uploaded model has arrived (or another one)
        return got
    except PlannerInputError as e:  # the same field, problem and fix the CLI prints
        msg = t("Upload rejected: {error}").format(error=plain(e))
    except Exception:  # noqa: BLE001 - a malformed config must never take the app down
        core.log.exception("upload %r failed", up.name)
        msg = t("Upload rejected: the file is not a usable causal-LM config.")
    st.error(msg)
    # the page shows it too, in place of a plan: a plan for the previous model would look like this file's
    st.session_state["_upload_error"] = f"{msg} " + t("Remove the file or upload a valid config.json; no plan is "
                                                      "shown until then.")
    return None


def _identity(model: str, text: str) -> str:
    return f"{model}\x00{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _hub_model() -> str | None:
    """The Hub id typed in the sidebar, once it resolves (the cache, or the Hub when online); None otherwise."""
    raw = str(st.session_state.get(key("hub")) or "").strip()
    if not raw:
        return None
    try:
        core.spec(raw)
    except PlannerInputError as e:  # not an id, not cached while offline, gated: the CLI's one line
        st.error(t("Hub id not used: {error}").format(error=plain(e)))
        return None
    except Exception:  # noqa: BLE001 - a broken cache entry must never take the app down
        core.log.exception("hub id %r failed", raw[:100])
        st.error(t("Hub id not used: its config could not be read."))
        return None
    st.caption(t("Using the Hub id **{id}**").format(id=plain(raw)))
    return raw


def _sync_weights(model: str, text: str) -> None:
    """A new model starts from the checkpoint's own weight format (the CLI's default): api.default_weights."""
    ident = _identity(model, text)
    if st.session_state.get("_weights_for") == ident:
        return
    st.session_state["_weights_for"] = ident
    try:
        st.session_state[key("weights")] = core.default_weights(model, text)
    except PlannerInputError as e:  # a quant_method the planner does not model: the user picks the format
        st.warning(t("Weights: {error}").format(error=plain(e)))


def _define_gpu() -> None:
    """The form's submit: register the GPU, keep it for the session, select it."""
    ss = st.session_state
    figs = {"name": str(ss.get("sb_ugpu_name") or "gpu")[:40],
            **{k: float(ss[f"sb_ugpu_{k}"]) for _, k, *_ in GPU_FORM}}
    try:
        gid = profiles.register_gpu(_form_gpu(figs))
    except PlannerInputError as e:
        ss["_ugpu_error"] = str(e)
        return
    ss.pop("_ugpu_error", None)
    ss["_user_gpus"] = [f for f in ss.get("_user_gpus", []) if f != figs][-(MAX_SESSION_GPUS - 1):] + [figs]
    ss[key("gpu")] = gid


def _gpu_form() -> None:
    with st.expander(t("Define a GPU"), icon=":material/add_circle:"):
        with st.form("sb_ugpu_form", border=False):
            st.text_input(t("Name"), value="my-gpu", max_chars=24, key="sb_ugpu_name")
            for label, k, default, low, high, helptext in GPU_FORM:
                st.number_input(t(label), min_value=low, max_value=high, value=default, key=f"sb_ugpu_{k}",
                                help=t(helptext))
            st.form_submit_button(t("Use this GPU"), on_click=_define_gpu)
        if st.session_state.get("_ugpu_error"):
            st.error(t("GPU not defined: {error}").format(error=plain(st.session_state["_ugpu_error"])))
        st.caption(t("Kept for this session only. The CLI takes the same figures: --gpu-memory-gib, "
                     "--gpu-bandwidth-tbs, --gpu-bf16-tflops, --gpu-fp8-tflops, --gpu-price, or --gpu-file."))


def sidebar() -> Selection:
    """Draw the shared controls and return the current request."""
    init()
    names, gids = model_names(), session_gpu_ids()
    d = _defaults(None)
    _keep_valid("model", names, d["model"])
    _keep_valid("gpu", gids, d["gpu"])
    _keep_valid("kv", KV_OPTIONS, "auto")
    _keep_valid("engine", kvmod.ENGINES, "paged")
    _keep_valid("server", SERVERS, "vllm")
    _keep_valid("tp", TP_OPTIONS, 1)
    _keep_valid("pp", PP_OPTIONS, 1)
    with st.sidebar:
        i18n.switch()
        nv = nvml_gpu()
        if nv:
            match = profiles.gpu_for_nvml_name(nv["name"])
            st.info(t("This machine: {count} x {name}, {free:.1f} GiB free of {total:.1f} GiB").format(
                        count=nv["count"], name=nv["name"], free=nv["free_bytes"] / 2**30, total=nv["total_bytes"] / 2**30)
                    + (t(" (profile {id})").format(id=match.id) if match else t(" (no profile)")),
                    icon=":material/developer_board:")
            if match and st.session_state.get(key("gpu")) != match.id:
                st.button(t("Plan for this machine's {id}").format(id=match.id), key="sb_use_nvml", on_click=_use_gpu,
                          args=(match.id, nv["count"]), icon=":material/arrow_downward:")
        st.selectbox(t("Model"), names, key=key("model"))
        uploaded = _upload()
        if uploaded:
            st.caption(t("Using the uploaded config: **{name}**").format(name=plain(uploaded[0])))
        st.text_input(t("Or a Hugging Face Hub id"), key=key("hub"), max_chars=200, placeholder="org/name",
                      help=t("Read from the local Hugging Face cache, or fetched (config.json and the safetensors "
                             "headers only) when the server is online. An upload takes precedence."))
        hub_id = None if uploaded else _hub_model()
        model, text = uploaded if uploaded else (hub_id or st.session_state[key("model")], "")
        _sync_weights(model, text)
        fmts = format_ids(st.session_state.get(key("weights")))
        _keep_valid("weights", fmts, d["weights"])
        st.selectbox("GPU", gids, key=key("gpu"), format_func=gpu_label)
        _gpu_form()
        c1, c2, c3 = st.columns([4, 3, 3])
        c1.number_input(t("GPUs"), min_value=1, max_value=INT_LIMITS["gpus"][1], step=1, key=key("gpus"),
                        help=t("Total GPUs; replicas = GPUs // (TP x PP)"))
        c2.selectbox("TP", TP_OPTIONS, key=key("tp"), help=t("Tensor parallel degree per replica"),
                     on_change=_gpus_at_least_tp)
        c3.selectbox("PP", PP_OPTIONS, key=key("pp"), on_change=_gpus_at_least_tp,
                     help=t("Pipeline stages per replica: each holds a contiguous share of the layers (at most one "
                            "stage per layer). The Plan page plans it; the other pages study one replica's TP."))
        st.selectbox(t("Weights"), fmts, key=key("weights"), format_func=_fmt_label,
                     help=t("Starts at the checkpoint's own format (its quantization_config), as the CLI does"))
        c1, c2 = st.columns(2)
        c1.selectbox(t("KV dtype"), KV_OPTIONS, key=key("kv"),
                     help=t("auto: the cache the serving engine allocates: the model's dtype, or the checkpoint's fp8 "
                            "KV scheme where that engine release reads it"))
        c2.selectbox(t("Engine"), kvmod.ENGINES, key=key("engine"),
                     help=t("paged: a serving engine's block-paged KV cache; transformers: HF generate's dynamic cache"))
        paged = st.session_state[key("engine")] == "paged"
        st.selectbox(t("Serving engine"), SERVERS, key=key("server"), format_func=SERVER_NAMES.get, disabled=not paged,
                     help=t("the engine that serves the paged plan: its start-up KV pool, scheduler and the costs "
                            "fitted on its published runs (newest release in profiles/engines)"))
        st.number_input(t("Batch (concurrent requests)"), min_value=1, max_value=INT_LIMITS["batch"][1], step=1,
                        key=key("batch"))
        c1, c2 = st.columns(2)
        c1.number_input(t("Prompt tokens"), min_value=1, max_value=INT_LIMITS["prompt"][1], step=128, key=key("prompt"))
        c2.number_input(t("Output tokens"), min_value=1, max_value=INT_LIMITS["output"][1], step=64, key=key("output"))
    ss = st.session_state
    sel = Selection(model=model, text=text, gpu=ss[key("gpu")], gpus=int(ss[key("gpus")]), tp=int(ss[key("tp")]),
                    pp=int(ss[key("pp")]),
                    weights=ss[key("weights")], kv_dtype=ss[key("kv")], engine=ss[key("engine")],
                    batch=int(ss[key("batch")]), prompt=int(ss[key("prompt")]), output=int(ss[key("output")]),
                    server=ss[key("server")] if ss[key("engine")] == "paged" else "vllm")
    st.session_state["selection"] = sel
    _write_query_params(sel)
    i18n.write_query_param()
    return sel


def link_params(sel: Selection) -> dict[str, str]:
    """The URL of a selection: its PlanRequest's ``to_params()``, with the model as the sidebar holds it
    (the bundled choice, and the Hub id box beside it; an upload cannot travel in a link)."""
    try:
        params = sel.request().to_params()
    except PlannerInputError:  # e.g. a TP the GPU count cannot hold yet: the widgets' values still travel
        params = {"gpu": sel.gpu, "gpus": str(sel.gpus), "tp": str(sel.tp), "weights": sel.weights, "kv": sel.kv_dtype,
                  **({"pp": str(sel.pp)} if sel.pp > 1 else {}),
                  "engine": sel.engine, **({"server": sel.server} if sel.server != "vllm" else {}),
                  "batch": str(sel.batch), "prompt": str(sel.prompt), "output": str(sel.output)}
    params["model"] = str(st.session_state[key("model")])
    params["hub"] = str(st.session_state[key("hub")] or "").strip()
    link_upload = st.session_state.get("_link_upload")
    if sel.text or link_upload:  # an upload: its name, marked, so that the recipient is told to upload it
        params.update(model=sel.model if sel.text else link_upload, upload="1", hub="")
    return params


def read_saved(raw: list[str], warnings: list[str]) -> list[dict[str, str]]:
    """The link's saved plans (``cmp``, each a PlanRequest's params URL-encoded); a bad one is warned about."""
    out = []
    for text in raw[-MAX_SAVED:]:
        params = dict(parse_qsl(str(text)[:4000]))
        try:
            PlanRequest.from_params(params)
            out.append(params)
        except PlannerInputError as e:
            warnings.append(param_warning("cmp", str(text), e))
    return out


def saved_plans() -> list[dict[str, str]]:
    return list(st.session_state.get("_saved", []))


def save_plan(params: dict[str, str]) -> None:
    """Keep ``params`` (a PlanRequest's) for the Compare page: once, the newest ``MAX_SAVED``."""
    kept = [p for p in saved_plans() if p != params]
    st.session_state["_saved"] = (kept + [dict(params)])[-MAX_SAVED:]


def remove_saved(i: int) -> None:
    plans = saved_plans()
    st.session_state["_saved"] = plans[:i] + plans[i + 1:]


def apply_params(params: dict[str, str]) -> None:
    """A widget callback: set the sidebar to ``params`` (a remedy's change, a ranked capacity plan), each
    value checked as a link's would be; the model stays as it is."""
    ss = st.session_state
    for name in SETTABLE:
        if name in params:
            ss[key(name)] = _parse_param(name, str(params[name]))
    _gpus_at_least_tp()   # a remedy names only what it changes: the PP (and the rest) stay as they are


def forget_link_upload() -> None:
    st.session_state.pop("_link_upload", None)


def _write_query_params(sel: Selection) -> None:
    params = link_params(sel)
    saved = [urlencode(p) for p in saved_plans()]
    if not saved and "cmp" in st.query_params:
        del st.query_params["cmp"]
    elif saved and saved != st.query_params.get_all("cmp"):
        st.query_params["cmp"] = saved
    for name in PARAMS:
        value = params.get(name, "")
        if not value:  # an empty Hub id box leaves no hub= in the link
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != value:
            st.query_params[name] = value


def selection() -> Selection:
    """The request the sidebar built on this run (pages call this)."""
    return st.session_state["selection"]
