"""What every page shares: the error guard and small rendering helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from dashboard.fmt import plain
from dashboard.state import Selection, selection
from planner.errors import PlannerInputError

log = logging.getLogger("dashboard")


def input_error_text(e: PlannerInputError) -> str:
    """The CLI's one line (field, problem, fix) as markdown, every part of it plain text."""
    return f"**{plain(e.field)}**: {plain(e.problem)}" + (f". Fix: {plain(e.fix)}" if e.fix else "")


def show_input_error(e: PlannerInputError) -> None:
    st.error(input_error_text(e), icon=":material/error:")


def run(body: Callable[[Selection], None], title: str, intro: str = "") -> None:
    """Render a page: an input error shows st.error with the field and the fix; anything else a short
    message (never a traceback); the sidebar and the other pages keep working."""
    st.title(title)
    if intro:
        st.caption(intro)
    try:
        body(selection())
    except PlannerInputError as e:
        show_input_error(e)
    except Exception:  # noqa: BLE001 - the last line of defence: no widget combination shows a traceback
        log.exception("page %s failed", title)
        st.error("This page could not be computed for the current choices (the details are in the server's log). "
                 "Change a choice in the sidebar; the other pages still work.", icon=":material/error:")


def guarded(fn: Callable[[], None]) -> None:
    """Run one section of a page so that its failure leaves the other sections standing."""
    try:
        fn()
    except PlannerInputError as e:
        show_input_error(e)
    except Exception:  # noqa: BLE001
        log.exception("section failed")
        st.error("This section could not be computed for the current choices (the details are in the server's log).",
                 icon=":material/error:")


def describe(sel: Selection) -> str:
    return (f"{plain(sel.model)} on {sel.tp} x {sel.gpu} (TP={sel.tp}), {sel.weights} weights, {sel.kv_dtype} KV, {sel.engine} engine, "
            f"batch {sel.batch}, {sel.prompt:,} + {sel.output:,} tokens")
