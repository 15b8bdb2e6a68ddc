"""What every page shares: the error guard and small rendering helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode

import streamlit as st

from dashboard.fmt import plain
from dashboard.i18n import t
from dashboard.state import SERVER_NAMES, Selection, forget_link_upload, selection
from planner.errors import PlannerInputError

log = logging.getLogger("dashboard")


def input_error_text(e: PlannerInputError) -> str:
    """The CLI's one line (field, problem, fix) as markdown, every part of it plain text."""
    # English: the CLI's line as it is; Korean: the same line in a translated frame ("입력 오류: ...")
    return (t("**{field}**: {problem}").format(field=plain(e.field), problem=plain(e.problem))
            + (t(". Fix: {fix}").format(fix=plain(e.fix)) if e.fix else ""))


def show_input_error(e: PlannerInputError) -> None:
    st.error(input_error_text(e), icon=":material/error:")


def run(body: Callable[[Selection], None], title: str, intro: str = "") -> None:
    """Render a page: an input error shows st.error with the field and the fix; anything else a short
    message (never a traceback); the sidebar and the other pages keep working."""
    head, link = st.columns([5, 1], vertical_alignment="bottom")
    head.title(title)
    if intro:
        st.caption(intro)
    if not model_ready():
        return
    try:
        body(selection())
    except PlannerInputError as e:
        show_input_error(e)
    except Exception:  # noqa: BLE001 - the last line of defence: no widget combination shows a traceback
        log.exception("page %s failed", title)
        st.error(t("This page could not be computed for the current choices (the details are in the server's log). "
                   "Change a choice in the sidebar; the other pages still work."), icon=":material/error:")
    with link:  # filled last: the page has written its own inputs into the URL by now
        copy_link()


def share_url() -> str:
    """This page's full link: the address the browser shows, with every current query parameter."""
    base = str(st.context.url or "").split("?", 1)[0]
    pairs = [(k, v) for k in st.query_params for v in st.query_params.get_all(k)]
    return base + ("?" + urlencode(pairs) if pairs else "")


def copy_link() -> None:
    """A "Copy link" popover: the full link in a code block, whose copy button works offline."""
    with st.popover(t("Copy link"), icon=":material/link:"):
        st.caption(t("This page with every input, for a colleague (an uploaded config.json must be uploaded again):"))
        st.code(share_url(), language=None, wrap_lines=True)


def model_ready() -> bool:
    """False, with the reason in the main area, when no plan may be shown: an upload was rejected (a plan
    would be the previous model's), or a shared link's model was an uploaded config not uploaded here."""
    err = st.session_state.get("_upload_error")
    if err:
        st.error(err, icon=":material/error:")
        return False
    name = st.session_state.get("_link_upload")
    if name:
        st.warning(t("This link's plan is for an uploaded model, **{name}**: a config.json cannot travel in "
                     "a link. Upload that config.json in the sidebar (**Or upload a model's config.json**) to see the "
                     "plan; every other setting of the link is already in the sidebar.").format(name=plain(name)),
                   icon=":material/upload_file:")
        st.button(t("Plan the sidebar's bundled model instead"), on_click=forget_link_upload, key="forget_link_upload")
        return False
    return True


def guarded(fn: Callable[[], None]) -> None:
    """Run one section of a page so that its failure leaves the other sections standing."""
    try:
        fn()
    except PlannerInputError as e:
        show_input_error(e)
    except Exception:  # noqa: BLE001
        log.exception("section failed")
        st.error(t("This section could not be computed for the current choices (the details are in the server's "
                   "log)."),
                 icon=":material/error:")


def _engine_name(sel: Selection, plan_page: bool) -> str:
    """The engine a page computes with: the Plan page (and the Trade-offs sweep) serve a paged plan with the
    sidebar's serving engine; the other pages study the paged layout alone."""
    return SERVER_NAMES[sel.server] if plan_page and sel.engine == "paged" else sel.engine


def describe(sel: Selection, plan_page: bool = False, served: bool | None = None, kv: str | None = None) -> str:
    """The sidebar's choices in one line; PP is planned on the Plan page only (the others study one TP group);
    ``served`` (default: on the Plan page) names the serving engine the page computes with; ``kv`` the KV dtype a
    plan resolved the sidebar's "auto" to (the cache its engine allocates; default: the selection's, ``sel.kv``)."""
    return t("{model} on {tp} x {gpu} (TP={tp}), {weights} weights, {kv} KV, {engine} engine, batch {batch}, "
             "{prompt:,} + {output:,} tokens").format(model=plain(sel.model), tp=sel.tp, gpu=sel.gpu, weights=sel.weights,
                                                      kv=f"{kv or sel.kv} (auto)" if sel.kv_dtype == "auto" else sel.kv_dtype,
                                                      engine=_engine_name(sel, plan_page if served is None else served),
                                                      batch=sel.batch,
                                                      prompt=sel.prompt, output=sel.output) \
        + ((t("; PP={pp}") if plan_page else t("; PP={pp} on the Plan page only")).format(pp=sel.pp) if sel.pp > 1 else "")
