"""Tables with their CSV download: the CSV holds exactly the frame the page shows, made safe against
CSV injection by planner.csvsafe (cells starting with = + - @ tab CR are quoted as text)."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from dashboard.i18n import label, lang, t
from planner import csvsafe

PLACEHOLDER = "—"
# snake_case header parts as plain words (the screen only: the CSV keeps the names with their units)
SUFFIXES = (("_per_s", "/s"), ("_pct", " (%)"), ("_ms", " (ms)"), ("_gib", " (GiB)"), ("_bytes", " (bytes)"),
            ("_s", " (s)"))
WORDS = (("usd_per_hour", "$ per hour"), ("cost_usd", "$"), ("usd", "$"), ("per_1m", "per 1M"), ("_per_s_", "/s_"),
         ("kv_dtype", "KV dtype"), ("gib", "GiB"), ("gpus", "GPUs"), ("gpu", "GPU"), ("ttft", "TTFT"), ("tpot", "TPOT"),
         ("e2e", "end-to-end"), ("kv", "KV"), ("_", " "))


# the plain words of the headers in Korean (the longest first; whole words only): a header with its own
# entry in dashboard/i18n_ko.json takes that instead
WORDS_KO = (("end-to-end", "종단 간"), ("per hour", "시간당"), ("per GPU", "GPU당"), ("per user", "사용자당"),
            ("per replica", "레플리카당"), ("per 1M", "100만 개당"), ("per request", "요청당"),
            ("output tokens", "출력 토큰"), ("input tokens", "입력 토큰"), ("tokens", "토큰"), ("output", "출력"),
            ("prompt", "프롬프트"), ("requests", "요청"), ("request", "요청"), ("replicas", "레플리카"),
            ("replica", "레플리카"), ("batch", "배치"), ("weights", "가중치"), ("model", "모델"), ("fits", "적합"),
            ("memory", "메모리"), ("latency", "지연 시간"), ("throughput", "처리량"), ("cost", "비용"),
            ("context", "컨텍스트"), ("cache", "캐시"), ("engine", "엔진"), ("source", "출처"), ("plan", "계획"),
            ("metric", "지표"), ("value", "값"), ("unit", "단위"), ("mean", "평균"), ("median", "중앙값"),
            ("error", "오차"), ("signed", "부호 있는"), ("abs", "절대"), ("max", "최대"), ("min", "최소"),
            ("total", "합계"), ("capacity", "용량"), ("rate", "요청률"), ("reason", "이유"), ("format", "형식"),
            ("bits", "비트"), ("layers", "레이어"), ("heads", "헤드"), ("prefill", "프리필"), ("decode", "디코드"),
            ("activations", "활성화"), ("overhead", "오버헤드"), ("headroom", "여유"), ("budget", "예산"),
            ("price", "가격"), ("term", "항목"), ("component", "구성 요소"), ("bytes", "바이트"),
            ("measured", "측정값"), ("predicted", "예측값"), ("limited by", "제한 요인"), ("bound", "병목"),
            ("share", "비중"), ("kind", "종류"), ("attention", "어텐션"), ("quality", "품질"), ("/s", "/초"),
            ("per", "당"), ("yes", "예"), ("no", "아니오"))
_WORDS_KO_RE = re.compile("|".join(rf"(?<![\w-]){re.escape(a)}(?![\w-])" if a[0].isalnum() else re.escape(a)
                                   for a, _ in WORDS_KO))


def localized(text: str) -> str:
    """A header (or a short table word) in the session's language: its own entry, else word by word."""
    if lang() != "ko" or not isinstance(text, str):
        return text
    if label(text) != text:
        return label(text)
    words = dict(WORDS_KO)
    return _WORDS_KO_RE.sub(lambda m: words[m.group(0)], text)


def header(name: str) -> str:
    """A column's name as the screen shows it: ``ttft_p90_ms`` -> "TTFT p90 (ms)", ``usd_per_hour`` ->
    "$ per hour"; a name with a space or capital is someone's wording already and stays."""
    if not isinstance(name, str) or name != name.lower() or " " in name:
        return str(name)
    text, unit = name, ""
    for old, new in SUFFIXES:
        if text.endswith(old):
            text, unit = text[: -len(old)], new
            break
    for old, new in WORDS:
        text = text.replace(old, new)
    return " ".join((text + unit).split())


def to_csv(df: pd.DataFrame) -> str:
    """The CSV of ``df`` as every download button serves it (planner.csvsafe.to_csv, no index)."""
    return csvsafe.to_csv(df)


def _config(value, default: str | None = None):
    """A column_config entry with its label in the session's language (a plain string is the label); an
    entry without a label (a number format only) takes ``default``, the header's."""
    if isinstance(value, str):
        return localized(value)
    if isinstance(value, dict):
        text = value.get("label") or default
        return {**value, "label": localized(text)} if isinstance(text, str) else value
    return value


def show(df: pd.DataFrame, name: str, key: str, download: pd.DataFrame | None = None, cells: tuple[str, ...] = (),
         **kw) -> None:
    """st.dataframe plus a download button of the same frame as CSV (or of ``download``: the numbers
    behind a formatted table). A cell that does not apply (a plan that was not simulated, a GPU the
    model does not fit, no price) shows a dash, not Streamlit's "None" (st.dataframe's ``placeholder``,
    streamlit/streamlit PR #12968); the CSV leaves it empty. Headers, column_config labels and the words
    in the ``cells`` columns (a status, a bound, a note) are shown in the session's language; the CSV
    keeps them as the core wrote them."""
    grid(df, cells, **kw)
    download_button(df if download is None else download, name, key)


def grid(df: pd.DataFrame, cells: tuple[str, ...] = (), **kw) -> None:
    """``show`` without the download: the table alone, its headers and ``cells`` in the session's language."""
    config = {c: localized(header(c)) for c in df.columns if localized(header(c)) != str(c)}
    config.update({k: _config(v, config.get(k)) for k, v in (kw.pop("column_config", None) or {}).items()})
    shown = df
    if lang() == "ko" and any(c in df for c in cells):
        shown = df.copy()
        for c in cells:
            if c in shown:
                shown[c] = shown[c].map(localized)
    st.dataframe(shown, hide_index=True, placeholder=PLACEHOLDER, column_config=config, **kw)


def download_button(df: pd.DataFrame, name: str, key: str) -> None:
    """The one CSV download of the dashboard: ``df`` through planner.csvsafe, as ``name``.csv."""
    st.download_button(t("Download {name} (CSV)").format(name=name), to_csv(df), file_name=f"{name}.csv", mime="text/csv",
                       key=f"dl_{key}", icon=":material/download:", on_click="ignore")


def results_frame(results) -> pd.DataFrame:
    """Plans as CSV rows: ``plan`` (1, 2, ...), the names that label each, then every figure as a number
    (PlanResult.labels and to_row; units in the headers)."""
    return pd.DataFrame([{"plan": i, **r.labels(), **r.to_row()} for i, r in enumerate(results, 1)])
