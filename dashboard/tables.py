"""Tables with their CSV download: the CSV holds exactly the frame the page shows."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from planner import csvsafe


def to_csv(df: pd.DataFrame) -> str:
    """CSV text with formula-injection cells neutralised (planner.csvsafe)."""
    return csvsafe.to_csv(df)


def show(df: pd.DataFrame, name: str, key: str, **kw) -> None:
    """st.dataframe plus a download button of the same frame as CSV."""
    st.dataframe(df, hide_index=True, **kw)
    st.download_button(f"Download {name} (CSV)", to_csv(df), file_name=f"{name}.csv", mime="text/csv",
                       key=f"dl_{key}", icon=":material/download:")
