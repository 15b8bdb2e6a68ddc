"""The one CSV writer of every export (CLI ``--csv``, ``validate --csv``, every dashboard download),
safe to open in a spreadsheet (OWASP "CSV Injection").

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a line feed is read as
a formula by Excel, LibreOffice and Google Sheets, and so is a line *inside* a cell (a spreadsheet
that splits a cell at CR or LF starts a new formula there). Text cells (model names from an uploaded
config, GPU ids, reasons) and column names are therefore neutralised at their start and after every
CR/LF with a single quote, which spreadsheets show as text; every text cell is quoted. Numbers stay
numbers: a negative headroom is written ``-1.5``, unquoted.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from .errors import PlannerInputError

DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\n")
_LINE_START = re.compile(r"(\r\n|\r|\n)(?=[=+\-@\t\r\n])")


def neutralise(value):
    """A text cell that cannot start a formula, at its start or after any line break in it."""
    if not isinstance(value, str):
        return value
    value = _LINE_START.sub(lambda m: m.group(1) + "'", value)
    return "'" + value if value.startswith(DANGEROUS) else value


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s)


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) cannot start a formula."""
    out = df.copy()
    for c in out.columns:
        if _is_text(out[c]):
            out[c] = out[c].astype(object).map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv(df: pd.DataFrame, path_or_buf=None, **kw) -> str | None:
    """``DataFrame.to_csv`` of the neutralised frame: every text cell quoted, numbers bare, no index."""
    kw.setdefault("index", False)
    kw.setdefault("quoting", csv.QUOTE_NONNUMERIC)
    return safe_frame(df).to_csv(path_or_buf, **kw)


def check_path(path: str | Path, flag: str = "--csv") -> Path:
    """``path`` as a file a CSV can be written to (checked before a long computation, and again on write)."""
    p = Path(path)
    if p.is_dir():
        raise PlannerInputError(flag, f"{p} is a folder", "give a file name, e.g. out.csv")
    if not p.parent.is_dir():
        raise PlannerInputError(flag, f"the folder {p.parent} does not exist", "create it or give another path")
    return p


def write(df: pd.DataFrame, path: str | Path, flag: str = "--csv") -> Path:
    """Write ``df`` to ``path`` through ``to_csv``; a path that cannot be written (a missing folder, a
    folder, no permission) is a PlannerInputError naming ``flag``, not a traceback."""
    p = check_path(path, flag)
    buf = io.StringIO()
    to_csv(df, buf)
    try:
        p.write_text(buf.getvalue(), encoding="utf-8")
    except OSError as e:
        raise PlannerInputError(flag, f"cannot write {p} ({e.strerror or e})", "give a writable path") from None
    return p
