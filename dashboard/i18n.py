"""English and Korean UI text: ``t("English")`` is the Korean when the session's language is "ko".

The English string is the key (and what the screen shows in English, byte for byte); the Korean lives
in dashboard/i18n_ko.json. A string with placeholders is translated first and formatted after:
``t("Fits: {used} of {cap}").format(used=..., cap=...)``. Messages that come from the core (an input
error's problem and fix, a plan's reason) stay English inside a translated frame.

The language is the sidebar's "lang" widget (st.session_state["lang"]), seeded from the URL's ``lang=``
before the page list is built (``init``). Outside a Streamlit run (tests, the CLI) it is English.
Terms follow the Korean study note the project was built from (its seed note): 프리필, 디코드, KV 캐시, 양자화, 증류.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

LANGS = ("en", "ko")
NAMES = {"en": "English", "ko": "한국어"}
KEY = "lang"
KO: dict[str, str] = json.loads((Path(__file__).with_name("i18n_ko.json")).read_text(encoding="utf-8"))


def lang() -> str:
    """The session's language: "en" outside a Streamlit script run."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is None:
            return "en"
        import streamlit as st

        value = st.session_state.get(KEY, "en")
    except Exception:  # noqa: BLE001 - no Streamlit, no session: English
        return "en"
    return value if value in LANGS else "en"


def t(text: str, context: str | None = None) -> str:
    """The Korean of ``text`` when the language is "ko" (``text`` itself when none is recorded).
    ``context`` tells apart one English label that needs two Korean words (gettext's msgctxt): the key
    ``"<text>|<context>"`` is looked up first ("GPUs" of the number input is "GPU 수", "GPUs|list" of
    a multiselect of GPUs "GPU")."""
    if lang() != "ko":
        return text
    if context and f"{text}|{context}" in KO:
        return KO[f"{text}|{context}"]
    return KO.get(text, text)


# Labels the core builds around a number or a name ("MHA (32 KV heads)", a table's cell): each English
# template is a key of i18n_ko.json, matched whole by ``label`` and its parts translated in turn
TEMPLATES = (
    "as shipped: {label}", "{kind} ({n} KV heads)", "MQA (1 KV head)", "MLA what-if (latent {rank} + rope {rope})",
    "this model ({attention})", "latent {rank} + rope {rope}", "K+V: 2 x {n} heads x {dim}",
    "EOS or max_tokens = {n}", "does not fit on up to 16 x {gpu}", "{gpu} has no price in its profile",
    # planner/planning.py's reason and planner/remedies.py's labels (before the generic "{a}; {b}")
    "needs {used} GiB per GPU of {cap} GiB; largest batch at this length: {n}",
    "the batch's KV cache needs {kv} GiB per GPU; the engine's start-up pool is {pool} GiB (see `capacity`); "
    "largest batch at this length: {n}",
    "the batch's KV cache needs {kv} GiB per GPU; the engine's start-up pool is empty (its weights and reserve leave "
    "no room) (see `capacity`); largest batch at this length: {n}",
    "vLLM {v} refuses to start at its default max_model_len of {mml} tokens: one such request needs {need} GiB "
    "of KV cache and the pool is {pool} GiB; start it with --max-model-len {n} or less (the `command` for this "
    "plan sets prompt + output)",
    "Batch {n}", "Prompt {n}", "{fmt} weights", "batch {b} (the largest that fits at {ctx} tokens)",
    "prompt {p} tokens (the longest that fits at batch {b})", "fp8 KV cache (half the bytes of bf16)",
    "TP={tp} ({g} GPUs in all)",
    # the band's range (planner/planning.py): its low end is 2.5-5 (fit_e2e.BAND_TAILS), so "3rd" is the one
    # ordinal other than "th"
    "{lo}th-{hi}th percentile", "{lo}rd-{hi}th percentile",
    "simulated: {c} clients in a closed loop, {n} requests of {p} + {o} tokens (each within 10 %), all measured; {engine} scheduler",
    "simulated: {c} client in a closed loop, {n} requests of {p} + {o} tokens (each within 10 %), all measured; {engine} scheduler",
    # the headline's note when the first wave lifts the mean above p90 (planner/planning.py), before "{a}; {b}"
    "{a}; the mean TTFT is above its p90: the clients' first prompts, sent together, queue behind each other (a benchmark's mean counts them too)",
    "{a}; the MoE experts' time is borrowed from another model's measured shape (its efficiency x this model's roofline), no kernel timing of this expert shape",
    "{name} (run with {newest}'s rules, the newest the engine table knows)",
    "{name} (synchronous scheduling, {ms} ms per pass)",
    "{a}; {b}",
)


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)))


_PATTERNS = tuple((tpl, _pattern(tpl)) for tpl in TEMPLATES)


def label(text: str) -> str:
    """A label or table word in the session's language: its own entry, else a template of ``TEMPLATES``
    matched whole with its parts translated, else ``text`` as it is (a model or GPU name)."""
    if lang() != "ko" or not isinstance(text, str):
        return text
    if text in KO:
        return KO[text]
    for tpl, rx in _PATTERNS:
        m = rx.fullmatch(text)
        if m and tpl in KO:
            return KO[tpl].format(**{k: label(v) for k, v in m.groupdict().items()})
    return text


def init() -> None:
    """Once a session, before anything is drawn: the URL's ``lang=`` into the widget's key. A bad value
    keeps English and leaves a warning for state.init to show with the other link warnings."""
    import streamlit as st

    ss = st.session_state
    if ss.get("_lang_ready"):
        if ss.get(KEY) not in LANGS:
            ss[KEY] = "en"
        return
    ss["_lang_ready"] = True
    raw = st.query_params.get(KEY)
    if raw is None:
        ss.setdefault(KEY, "en")
        return
    value = str(raw).strip().lower()
    if value in LANGS:
        ss[KEY] = value
    else:
        from dashboard.fmt import plain

        ss.setdefault(KEY, "en")
        short = str(raw)[:40]
        ss["_lang_warning"] = (f"URL parameter {plain(f'{KEY}={short}')} ignored: it is not a language "
                               f"(choose one of {', '.join(LANGS)})")


def switch() -> None:
    """The language switch (the sidebar's first widget); its key is the URL parameter."""
    import streamlit as st

    st.radio("Language / 언어", LANGS, key=KEY, format_func=NAMES.__getitem__, horizontal=True)


def write_query_param() -> None:
    """``lang=ko`` in the URL; English is the default and leaves no parameter."""
    import streamlit as st

    value = st.session_state.get(KEY, "en")
    if value == "en" or value not in LANGS:
        if KEY in st.query_params:
            del st.query_params[KEY]
    elif st.query_params.get(KEY) != value:
        st.query_params[KEY] = value
