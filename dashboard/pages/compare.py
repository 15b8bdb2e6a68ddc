"""Compare plans: two to four plans saved from the Plan page ("Save this plan"), side by side.

Each saved plan is a PlanRequest's URL parameters (kept in the session and in the link's ``cmp=``);
every figure comes from its PlanResult, and the download is their ``to_row()`` (numbers only)."""

import pandas as pd
import streamlit as st

from dashboard import core, fmt, page, state, tables
from dashboard.i18n import t
from dashboard.state import Selection
from planner.request import PlanRequest
from planner.result import PlanResult

NO_PLAN = "—"
# (row label, the figure, how it is shown, whether it needs a plan that runs)
ROWS = (
    ("Fits", lambda r: r.fits, lambda v: "yes" if v else "no", False),
    ("Memory per GPU", lambda r: r.memory.memory_total_bytes_per_gpu, fmt.gib, False),
    ("Usable per GPU", lambda r: r.memory.capacity_bytes_per_gpu, fmt.gib, False),
    ("Largest batch", lambda r: r.memory.max_batch, fmt.count, False),
    ("TTFT mean", lambda r: r.latency.ttft_s, fmt.ms, True),
    ("TTFT p50", lambda r: r.latency.percentile("ttft", 50), fmt.ms, True),
    ("TTFT p90", lambda r: r.latency.percentile("ttft", 90), fmt.ms, True),
    ("TPOT mean", lambda r: r.latency.tpot_s, fmt.ms, True),
    ("TPOT p50", lambda r: r.latency.percentile("tpot", 50), fmt.ms, True),
    ("TPOT p90", lambda r: r.latency.percentile("tpot", 90), fmt.ms, True),
    ("Output tokens/s", lambda r: r.throughput.deployment_output_tokens_per_s, fmt.per_s, True),
    ("Requests/s", lambda r: r.throughput.deployment_requests_per_s, lambda v: fmt.per_s(v, 2), True),
    ("$ per hour", lambda r: r.cost.deployment_usd_per_hour, fmt.usd, False),
    ("$ per 1M output tokens", lambda r: r.cost.cost_usd_per_1m_output_tokens, fmt.usd, True),
)


def plan_name(req: PlanRequest) -> str:
    d, wl = req.deployment, req.workload
    return (f"{req.model_name} · {req.gpus or d.tp * d.pp} x {req.gpu} TP{d.tp}" + (f" PP{d.pp}" if d.pp > 1 else "")
            + f" · {d.weights}/{d.kv_dtype} KV · " + t("batch {batch}").format(batch=wl.batch)
            + f", {wl.prompt_tokens:,}+{wl.output_tokens:,}")


def side_by_side(results: list[PlanResult]) -> pd.DataFrame:
    """One row per figure, one column per plan, formatted; a plan that cannot run shows a dash."""
    cols = {}
    for i, r in enumerate(results, 1):
        cols[f"{i}. {plan_name(r.request)}"] = [NO_PLAN if needs_run and not r.runs else t(show(get(r)))
                                                for _, get, show, needs_run in ROWS]
    return pd.DataFrame({"figure": [t(label) for label, *_ in ROWS], **cols})


def body(sel: Selection) -> None:
    saved = state.saved_plans()
    if len(saved) < 2:
        st.info((t("No plan saved yet.") if not saved else t("1 plan saved.")) + " "
                + t("On **Plan one deployment**, press **Save this plan** for each plan to compare (2 to {most}); "
                    "they stay in this page's link.").format(most=state.MAX_SAVED), icon=":material/bookmark_add:")
        if not saved:
            return
    results = [core.result(PlanRequest.from_params(p)) for p in saved]
    table = side_by_side(results)
    st.dataframe(table, hide_index=True, height=35 * (len(table) + 1) + 3,
                 column_config={"figure": st.column_config.TextColumn(t("figure"), pinned=True)})
    tables.download_button(tables.results_frame(results), "compare_plans", "compare")
    st.caption(t("Mean and p50/p90 latency from the simulation of each plan (as a serving benchmark measures them); "
               "a plan that does not fit cannot run and shows a dash."))
    cols = st.columns(len(saved) + 1)
    for i, col in enumerate(cols[:-1]):
        col.button(t("Remove plan {n}").format(n=i + 1), key=f"cmp_remove_{i}", on_click=state.remove_saved, args=(i,),
                   icon=":material/delete:")


page.run(body, t("Compare plans"), t("Saved plans side by side: memory, latency, throughput and cost."))
