"""CSV export that cannot run formulas in a spreadsheet (OWASP "CSV Injection").

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets. Text cells (model names from an uploaded config, GPU ids,
reasons) that begin so are prefixed with a single quote, which spreadsheets show as text.
Numbers are left as numbers: a negative headroom stays ``-1.5``.
"""

from __future__ import annotations

import pandas as pd

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) cannot start a formula."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].astype(object).map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv(df: pd.DataFrame, path_or_buf=None, **kw) -> str | None:
    """``DataFrame.to_csv`` on the neutralised frame (index left out unless asked)."""
    kw.setdefault("index", False)
    return safe_frame(df).to_csv(path_or_buf, **kw)
