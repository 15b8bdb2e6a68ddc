"""Tables with their CSV download: the CSV holds exactly the frame the page shows, made safe against
CSV injection by planner.csvsafe (cells starting with = + - @ tab CR are quoted as text)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from planner import csvsafe

PLACEHOLDER = "—"
# snake_case header parts as plain words (the screen only: the CSV keeps the names with their units)
SUFFIXES = (("_per_s", "/s"), ("_pct", " (%)"), ("_ms", " (ms)"), ("_gib", " (GiB)"), ("_bytes", " (bytes)"),
            ("_s", " (s)"))
WORDS = (("usd_per_hour", "$ per hour"), ("cost_usd", "$"), ("usd", "$"), ("per_1m", "per 1M"), ("_per_s_", "/s_"),
         ("kv_dtype", "KV dtype"), ("gpus", "GPUs"), ("gpu", "GPU"), ("ttft", "TTFT"), ("tpot", "TPOT"),
         ("e2e", "end-to-end"), ("kv", "KV"), ("_", " "))


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


def show(df: pd.DataFrame, name: str, key: str, download: pd.DataFrame | None = None, **kw) -> None:
    """st.dataframe plus a download button of the same frame as CSV (or of ``download``: the numbers
    behind a formatted table). A cell that does not apply (a plan that was not simulated, a GPU the
    model does not fit, no price) shows a dash, not Streamlit's "None" (st.dataframe's ``placeholder``,
    streamlit/streamlit PR #12968); the CSV leaves it empty."""
    config = {c: header(c) for c in df.columns if header(c) != str(c)}
    config.update(kw.pop("column_config", None) or {})
    st.dataframe(df, hide_index=True, placeholder=PLACEHOLDER, column_config=config, **kw)
    download_button(df if download is None else download, name, key)


def download_button(df: pd.DataFrame, name: str, key: str) -> None:
    """The one CSV download of the dashboard: ``df`` through planner.csvsafe, as ``name``.csv."""
    st.download_button(f"Download {name} (CSV)", to_csv(df), file_name=f"{name}.csv", mime="text/csv",
                       key=f"dl_{key}", icon=":material/download:", on_click="ignore")


def results_frame(results) -> pd.DataFrame:
    """Plans as CSV rows: ``plan`` (1, 2, ...), the names that label each, then every figure as a number
    (PlanResult.labels and to_row; units in the headers)."""
    return pd.DataFrame([{"plan": i, **r.labels(), **r.to_row()} for i, r in enumerate(results, 1)])
