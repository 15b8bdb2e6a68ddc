"""A page's own inputs in the URL: each widget key is its query parameter, with a page prefix
(``c_`` the capacity plan, ``to_`` trade-offs, ``q_`` quantization, ``e_`` engine, ``v_`` validation),
so that a shared link reopens the page as it was, next to the sidebar's plan (dashboard/state.py).

A page calls ``seed`` before drawing its widgets (defaults, then on the session's first visit whatever
valid the link says; a bad value shows a warning and keeps the default) and ``write`` after them. The
widgets take their value from session state only (no ``value=``), so the two never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from planner.errors import PlannerInputError


@dataclass(frozen=True)
class Field:
    """One input: ``key`` is both the widget key and the URL parameter; ``kind`` int, float, bool, one
    (an option) or many (options, comma-separated); ``options`` for one/many, ``low``/``high`` for numbers."""

    key: str
    kind: str
    options: tuple = ()
    low: float = -math.inf
    high: float = math.inf


def _option(f: Field, raw: str):
    by_text = {str(o): o for o in f.options}
    if raw not in by_text:
        shown = ", ".join(map(str, f.options[:8])) + (", ..." if len(f.options) > 8 else "")
        raise PlannerInputError(f.key, f"{raw[:60]!r} is not offered", f"choose one of {shown}")
    return by_text[raw]


def parse(f: Field, raw: str):
    """The widget's value of a URL parameter's text; PlannerInputError naming the parameter when invalid."""
    raw = str(raw).strip()
    if f.kind == "one":
        return _option(f, raw)
    if f.kind == "many":
        return [_option(f, x.strip()) for x in raw.split(",") if x.strip()]
    if f.kind == "bool":
        if raw not in ("0", "1"):
            raise PlannerInputError(f.key, f"{raw[:40]!r} is not 0 or 1", "write 1 (yes) or 0 (no)")
        return raw == "1"
    try:
        value = int(raw) if f.kind == "int" else float(raw)
    except ValueError:
        raise PlannerInputError(f.key, f"{raw[:40]!r} is not a number") from None
    if not (math.isfinite(value) and f.low <= value <= f.high):
        raise PlannerInputError(f.key, f"{raw[:40]!r} is out of range", f"use {f.low:g} to {f.high:g}")
    return value


def text(f: Field, value) -> str:
    if f.kind == "many":
        return ",".join(str(v) for v in value)
    if f.kind == "bool":
        return "1" if value else "0"
    return str(value)


def _valid(f: Field, value) -> bool:
    try:
        return parse(f, text(f, value)) == value
    except PlannerInputError:
        return False


def seed(fields: tuple[Field, ...], defaults: dict) -> None:
    """Defaults, then (once a session per page) the link's valid values, into the widget keys."""
    from dashboard.state import param_warning

    ss = st.session_state
    flag = f"_url_read_{fields[0].key}"
    if not ss.get(flag):
        ss[flag] = True
        for f in fields:
            raw = st.query_params.get(f.key)
            if raw is None:
                continue
            try:
                ss[f.key] = parse(f, raw)
            except PlannerInputError as e:
                st.warning(param_warning(f.key, str(raw), e), icon=":material/link_off:")
    for f in fields:
        if f.key not in ss or not _valid(f, ss[f.key]):
            ss[f.key] = defaults[f.key]


def write(fields: tuple[Field, ...]) -> None:
    """The widgets' values into the URL (after the page drew them)."""
    for f in fields:
        if f.key in st.session_state:
            value = text(f, st.session_state[f.key])
            if st.query_params.get(f.key) != value:
                st.query_params[f.key] = value
