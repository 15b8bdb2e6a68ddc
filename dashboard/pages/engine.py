"""Page: the KV pool vLLM, SGLang or TensorRT-LLM allocates at start-up, line by line, and a pasted log checked."""

import pandas as pd
import streamlit as st

from dashboard import core, fmt, page, tables, urlstate
from dashboard.i18n import t
from dashboard.state import Selection

ENGINES = ("vllm", "sglang", "trtllm")
NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}


def _settings(sel: Selection) -> tuple[str, str | None, str, float | None, int | None]:
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    F = urlstate.Field
    fields = (F("e_engine", "one", tuple(ENGINES)), F("e_entry", "one", ("serve", "LLM")),
              F("e_frac", "float", low=0.0, high=1.0), F("e_mml", "int", low=0, high=1 << 24))
    urlstate.seed(fields, {"e_engine": ENGINES[0], "e_entry": "serve", "e_frac": 0.0, "e_mml": 0})
    engine = c1.selectbox(t("Engine"), ENGINES, key="e_engine", format_func=NAMES.get)
    versions = core.engine_versions(engine)
    # the version and utilization widgets are keyed by engine and version (each keeps its own value); their
    # URL parameters carry the same names: e_version_vllm=0.19.1, e_util_0.19.1=0.85
    extra = (F(f"e_version_{engine}", "one", tuple(versions)),)
    urlstate.seed(extra, {f"e_version_{engine}": versions[0]})
    version = c2.selectbox(t("Version"), versions, key=f"e_version_{engine}",
                           help=t("The rules of this release (profiles/engines): each cites the engine's file and line"))
    entry = c3.selectbox(t("Entry point"), ("serve", "LLM"), key="e_entry", disabled=engine != "vllm",
                         help=t("vllm serve (API server) or the offline LLM class: their scheduler defaults differ"))
    if engine == "vllm":
        default = core.engine_default_util(engine, version)
        extra += (F(f"e_util_{version}", "float", low=0.05, high=1.0),)
        urlstate.seed(extra[-1:], {f"e_util_{version}": default})
        util = c4.number_input(t("GPU memory utilization"), min_value=0.05, max_value=1.0, step=0.01,
                               key=f"e_util_{version}", help=t("--gpu-memory-utilization; {default:.2f} is vLLM "
                                                                "{version}'s default").format(default=default,
                                                                                             version=version))
    elif engine == "trtllm":
        util = c4.number_input(t("free_gpu_memory_fraction (0 = 0.9)"), min_value=0.0, max_value=1.0,
                               step=0.01, key="e_frac", help=t("kv_cache_config.free_gpu_memory_fraction: the share "
                               "of the memory TensorRT-LLM's profiling pass leaves free that the KV cache takes"))
    else:
        util = c4.number_input(t("mem_fraction_static (0 = SGLang's rule)"), min_value=0.0, max_value=1.0,
                               step=0.01, key="e_frac", help=t("--mem-fraction-static; 0 = the release's rule for "
                               "the GPU's memory and the TP size"))
    mml = st.number_input(t("max_model_len (0 = the model's own, as the engine derives it)"), min_value=0,
                          max_value=1 << 24, step=1024, key="e_mml")
    urlstate.write(fields + extra)
    return engine, version, entry, (util or None), (int(mml) or None)


def pool_section(sel: Selection) -> None:
    engine, version, entry, util, mml = _settings(sel)
    c = core.engine_capacity(sel.model, sel.text, sel.gpu, sel.tp, sel.weights, sel.kv_dtype, engine, version, entry,
                             util, mml)
    band = c["band"]
    a, b, d = st.columns(3)
    a.metric(t("KV cache pool"), fmt.tokens(c["kv_cache_tokens"]),
             help=t("As the engine logs it ('GPU KV cache size' / 'max_total_num_tokens' / 'max tokens in paged KV "
                    "cache')"))
    b.metric(t("Max concurrency at {n:,} tokens").format(n=c["max_model_len"]), f"{c['max_concurrency']:,.2f} x")
    d.metric(t("KV memory per GPU"), fmt.gib(c["kv_budget_bytes_per_gpu"]))
    if band["n"]:
        st.caption(t("Measured spread: the engine's own pool was {low:+.1f} % to {high:+.1f} % of the prediction on {n} "
                     "public start-up logs of {group}, i.e. {lo_tokens:,} to {hi_tokens:,} tokens. Calibration: "
                     "{calibration}.").format(low=band["low_pct"], high=band["high_pct"], n=band["n"],
                                               group=band["group"], lo_tokens=c["kv_cache_tokens_low"],
                                               hi_tokens=c["kv_cache_tokens_high"], calibration=c["calibration"]))
    if not c["fits"]:
        st.error(t("Does not fit: {reason}").format(reason=c["reason"]), icon=":material/error:")
    st.caption(t("Rules: {rules}.").format(rules=c["engine_rules"]))
    terms = pd.DataFrame([{"term": term["name"], "GiB": term["bytes"] / 2**30,
                           "subtracted from the budget": "yes" if term["counted"] else "no",
                           "source": term["source"]} for term in c["terms"]])
    st.subheader(t("Start-up memory, term by term (per GPU)"))
    tables.show(terms, "engine_terms", "e_terms", cells=("subtracted from the budget",),
                column_config={"GiB": st.column_config.NumberColumn(format="%.2f")})
    settings = pd.DataFrame([{"setting": k, "value": str(v["value"]), "from": v["source"]}
                             for k, v in c["settings"].items()])
    st.subheader(t("Settings: given, or the version's default"))
    tables.show(settings, "engine_settings", "e_settings")
    for n in c["notes"]:
        st.info(n)


def log_section(sel: Selection) -> None:
    st.subheader(t("Check a start-up log"))
    st.caption(t("Paste a vLLM, SGLang or TensorRT-LLM start-up log (the lines up to 'GPU KV cache size', "
               "'max_total_num_tokens' or 'Allocated ... for max tokens in paged KV cache'). "
               "Its settings are read from the log; the model is the sidebar's, the GPU the one the log names "
               "(else the sidebar's). Nothing is stored."))
    with st.form("e_log_form"):
        text = st.text_area(t("Start-up log"), height=180, key="e_log", max_chars=2_000_000)
        use_sidebar_gpu = st.checkbox(t("Use the sidebar's GPU"), value=False, key="e_log_gpu")
        go = st.form_submit_button(t("Check the log"))
    if not (go and text.strip()):
        return
    r = core.engine_log_check(text, sel.model, sel.text, sel.gpu if use_sidebar_gpu else None)
    st.caption(t("{engine} {version} ({evidence}); rules: {era}; {model} on {gpu}, TP {tp}.").format(
        engine=r["engine"], version=r["version"], evidence=r["version_evidence"], era=r["era"], model=r["model"],
        gpu=r["gpu"], tp=r["tp"]))
    rows = pd.DataFrame([{"line": x["line"], "unit": x["unit"], "logged": x["logged"], "predicted": x["predicted"],
                          "error %": x["error_pct"]} for x in r["lines"]])
    tables.show(rows, "engine_log_check", "e_log_rows",
                column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("logged", "predicted", "error %")})
    if r["disagreeing_term"]:
        st.caption(t("Largest disagreement: {term}").format(term=r["disagreeing_term"]))
    if r["assumed"]:
        with st.expander(t("{n} settings assumed (not in the log)").format(n=len(r["assumed"]))):
            st.dataframe(pd.DataFrame({"assumed": r["assumed"]}), hide_index=True,
                         column_config={"assumed": t("assumed")})


def body(sel: Selection) -> None:
    page.guarded(lambda: pool_section(sel))
    st.divider()
    page.guarded(lambda: log_section(sel))


page.run(body, t("Engine KV pool"),
         t("How many tokens of KV cache vLLM, SGLang or TensorRT-LLM will actually allocate for this model on this GPU, as the "
         "engine's own start-up arithmetic computes it for the chosen release, with the spread measured on public "
         "start-up logs."))
