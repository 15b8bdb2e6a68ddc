"""Tables with their CSV download: the CSV holds exactly the frame the page shows, made safe against
CSV injection by planner.csvsafe (cells starting with = + - @ tab CR are quoted as text)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from planner import csvsafe

PLACEHOLDER = "—"


def to_csv(df: pd.DataFrame) -> str:
    """The CSV of ``df`` as every download button serves it (planner.csvsafe.to_csv, no index)."""
    return csvsafe.to_csv(df)


def show(df: pd.DataFrame, name: str, key: str, download: pd.DataFrame | None = None, **kw) -> None:
    """st.dataframe plus a download button of the same frame as CSV (or of ``download``: the numbers
    behind a formatted table). A cell that does not apply (a plan that was not simulated, a GPU the
    model does not fit, no price) shows a dash, not Streamlit's "None" (st.dataframe's ``placeholder``,
    streamlit/streamlit PR #12968); the CSV leaves it empty."""
    st.dataframe(df, hide_index=True, placeholder=PLACEHOLDER, **kw)
    st.download_button(f"Download {name} (CSV)", to_csv(df if download is None else download), file_name=f"{name}.csv", mime="text/csv",
                       key=f"dl_{key}", icon=":material/download:", on_click="ignore")
