"""Page 5: capacity plan. A workload and latency targets in; ranked plans out, cheapest first, with the
reason each other candidate fails (planner.slo.plan_capacity)."""

import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, tables
from dashboard.state import TP_OPTIONS, Selection, format_ids, gpu_ids
from planner import kv as kvmod
from planner.memory import SERVERS
from planner.simulate import DISTRIBUTIONS
from planner.slo import PERCENTILES

SIMULATE_TOP, SIM_REQUESTS = core.CAPACITY_SIMULATE_TOP, core.CAPACITY_SIM_REQUESTS


def _target(col, label: str, default: float, key: str, help: str) -> float | None:
    on = col.checkbox(f"{label} target", value=default > 0, key=f"{key}_on")
    v = col.number_input(f"{label} (ms)", min_value=1.0, max_value=600_000.0, value=float(default or 10_000),
                         step=10.0, key=key, help=help + " (used when its box is ticked)")
    return v / 1e3 if on else None


def _dollars(text: str) -> str:
    """The core's sentence (bundled GPU and format ids, numbers) with its $ signs kept from becoming LaTeX."""
    return str(text).replace("$", "\\$")


def shown_columns(pct: int) -> list[str]:
    """The columns of the ranked table, in order; the percentile's simulated latencies in ms."""
    return ["status", "gpu", "tp", "pp", "weights", "kv_dtype", "replicas", "gpus_total", "batch", "usd_per_hour",
            "cost_usd_per_1m_output_tokens", f"sim_ttft_p{pct}_ms", f"sim_tpot_p{pct}_ms", f"sim_e2e_p{pct}_ms",
            "mean_ttft_ms", "mean_tpot_ms", "capacity_headroom", "latency_headroom", "server", "server_version",
            "evaluated_by", "failed", "reason"]


def ranked_table(df: pd.DataFrame, pct: int) -> pd.DataFrame:
    """The core's ranking as shown: seconds to ms, the failed column only where the plan is rejected."""
    d = df.copy()
    for c in [c for c in d.columns if c.endswith("_s") and (c.startswith("sim_") or c.startswith("mean_"))]:
        d[c[:-2] + "_ms"] = d[c].astype(float) * 1e3
    if "failed" in d:
        d["failed"] = d["failed"].where(d["status"] == "rejected", "")
    cols = [c for c in shown_columns(pct) if c in d.columns]
    out = d[cols].copy()
    num = out.select_dtypes("number").columns
    out[num] = out[num].round(4)
    return out.fillna({c: "" for c in ("failed", "reason") if c in out})


def body(sel: Selection) -> None:
    st.caption(f"Model: {fmt.plain(sel.model)}; engine: {sel.engine}. Candidates: every bundled GPU x TP x weight format "
               "x KV dtype unless narrowed below (an empty list searches that axis whole). Change the inputs, then "
               "press **Plan capacity**: the search bounds every candidate, builds only those that could be "
               "cheapest and simulates the winner (about a second; the same inputs again are instant).")
    with st.form("capacity_form", border=False):
        st.subheader("Workload")
        c = st.columns(5)
        rate = c[0].number_input("Requests per second", min_value=0.01, max_value=1e6, value=5.0, step=1.0,
                                 key="c_rate")
        prompt = c[1].number_input("Prompt tokens (mean)", min_value=1, max_value=1 << 20, value=sel.prompt,
                                   step=128, key="c_prompt")
        output = c[2].number_input("Output tokens (mean)", min_value=1, max_value=1 << 20, value=sel.output,
                                   step=64, key="c_output")
        dist = c[3].selectbox("Length distribution", DISTRIBUTIONS, key="c_dist",
                              help="fixed: every request the mean; uniform on [1, 2 x mean - 1]; exponential")
        max_tokens = c[4].number_input("max_tokens (0: none)", min_value=0, max_value=1 << 20, value=0, step=64,
                                       key="c_max_tokens",
                                       help="the requests' length cap: outputs stop there or at EOS. TensorRT-LLM "
                                            "reserves prompt + max_tokens of KV per request at admission")
        st.subheader("Latency targets")
        c = st.columns(4)
        ttft = _target(c[0], "TTFT", 500, "c_ttft", "time to first token")
        tpot = _target(c[1], "TPOT", 50, "c_tpot", "time per output token")
        e2e = _target(c[2], "End-to-end", 0, "c_e2e", "the whole request")
        pct = c[3].selectbox("Percentile", PERCENTILES, index=PERCENTILES.index(90), key="c_pct",
                             help="the simulated percentile the targets are checked at")
        with st.expander("Candidates (empty: the whole default space)", expanded=False):
            c = st.columns(5)
            gpus = c[0].multiselect("GPUs", gpu_ids(), default=[], key="c_gpus", placeholder="every bundled GPU",
                                    help="empty: every bundled GPU (those without a price are listed as rejected)")
            tps = c[1].multiselect("TP", TP_OPTIONS, default=[], key="c_tps", placeholder="1, 2, 4, 8",
                                   help="empty: 1, 2, 4 and 8 where they split the attention heads; pipeline "
                                        "stages only where one node cannot hold the weights")
            weights = c[2].multiselect("Weights", format_ids(), default=[], key="c_weights",
                                       placeholder="what each GPU runs well",
                                       help="empty: bf16, fp8 and fp8-block where the GPU has fp8, and the "
                                            "checkpoint's own format")
            kvs = c[3].multiselect("KV dtype", tuple(kvmod.KV_DTYPES), default=[], key="c_kv",
                                   placeholder="bf16, fp8 where supported",
                                   help="empty: bf16, and fp8 where the GPU has fp8 (the sidebar's KV dtype does "
                                        "not limit the search)")
            server = c[4].selectbox("Serving engine", SERVERS, key="c_server",
                                    help="its start-up KV pool and scheduler (newest release in profiles/engines)")
        st.form_submit_button("Plan capacity", type="primary", key="c_submit", icon=":material/search:")
    if not (ttft or tpot or e2e):
        st.warning("Set at least one latency target (TTFT, TPOT or end-to-end).")
        return
    df = core.capacity_plan(sel.model, sel.text, float(rate), int(prompt), int(output), ttft, tpot, e2e, int(pct),
                            tuple(gpus), tuple(int(t) for t in tps), tuple(weights), tuple(kvs), sel.engine,
                            dist, SIMULATE_TOP, SIM_REQUESTS, server, int(max_tokens) or None)
    if df.empty:
        st.warning("No candidate to rank.")
        return
    ok = df[df["status"] != "rejected"]
    if len(ok):
        st.success(f"Best plan: **{_dollars(df.attrs.get('verdict', ''))}**.", icon=":material/check_circle:")
        top = ok.head(12).copy()
        top["plan"] = (top["gpus_total"].astype(int).astype(str) + " x " + top["gpu"].astype(str) + " TP"
                       + top["tp"].astype(str) + top["pp"].map(lambda p: f" PP{p}" if p > 1 else "") + " "
                       + top["weights"].astype(str) + " " + top["kv_dtype"].astype(str))
        top["label"] = top["usd_per_hour"].map(lambda v: f"${v:,.2f}/h")
        st.plotly_chart(figures.hbars(top, "plan", "usd_per_hour", "The best plans that meet the targets, in rank order",
                                      "USD per hour", color="status", text="label"))
    else:
        st.warning(f"{_dollars(df.attrs.get('verdict', 'No candidate meets the targets'))}. The reasons are in the "
                   "table: relax a target, lower the rate, add GPU types or larger TP, or quantize.",
                   icon=":material/warning:")
    shown = ranked_table(df, int(pct))
    st.subheader(f"All {len(shown):,} candidates, ranked")
    tables.show(shown, "capacity_plan", "cap")
    n = df.attrs.get("search", {})
    st.caption(f"Ranked by the core (planner.slo): {n.get('candidates', len(df))} candidates; "
               f"{n.get('rejected_by_bound', 0)} rejected by an optimistic roofline bound (memory, latency alone, "
               f"GPUs), {n.get('built', 0)} plans built with the serving engine in order of that bound and ranked by "
               f"the mean-value model (**meets (mean-value)**), {n.get('simulated', 0)} simulated ({SIM_REQUESTS} "
               f"requests each, replicas added until the targets hold: **meets**). A plan whose bound cannot beat the "
               f"{SIMULATE_TOP} confirmed is not built (`failed` = cost). Latencies in ms; an unstable queue shows no "
               "finite TTFT; headroom is the unused fraction of capacity or of the tightest target.")
    failing = df.loc[df["status"] == "rejected"]
    if len(failing):
        why = (failing["failed"].fillna("other").astype(str).value_counts().rename_axis("failed on")
               .reset_index(name="candidates"))
        with st.expander(f"Why {len(failing):,} candidates fail (counts)"):
            tables.show(why, "capacity_fail_reasons", "capwhy")


page.run(body, "Capacity plan", "How many of which GPUs does this workload need to meet its latency targets, "
         "and what is the cheapest way?")
