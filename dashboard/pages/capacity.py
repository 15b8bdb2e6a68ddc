"""Page 5: capacity plan. A workload and latency targets in; ranked plans out, cheapest first, with the
reason each other candidate fails."""

import importlib.util

import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, tables
from dashboard.state import TP_OPTIONS, Selection, format_ids, gpu_ids
from planner import kv as kvmod

FIRST = ["status", "gpu", "tp", "weights", "kv_dtype", "replicas", "gpus_total", "batch", "usd_per_hour",
         "cost_usd_per_1m_output_tokens", "capacity_headroom", "latency_headroom", "failed", "reason"]


def _target(col, label: str, default: float, key: str, help: str) -> float | None:
    on = col.checkbox(label, value=default > 0, key=f"{key}_on")
    v = col.number_input(f"{label} (ms)", min_value=1.0, max_value=600_000.0, value=float(default or 1000),
                         step=10.0, key=key, disabled=not on, help=help, label_visibility="collapsed")
    return v / 1e3 if on else None


def body(sel: Selection) -> None:
    if importlib.util.find_spec("planner.slo") is None:
        st.info("The capacity planner (planner/slo.py) is not in this build yet.")
        return
    st.caption(f"Model: {sel.model}; engine: {sel.engine}. Candidates are every GPU, TP, weight format and KV dtype "
               "chosen below.")
    st.subheader("Workload")
    c = st.columns(3)
    rate = c[0].number_input("Requests per second", min_value=0.01, max_value=1e6, value=5.0, step=1.0, key="c_rate")
    prompt = c[1].number_input("Prompt tokens", min_value=1, max_value=1 << 20, value=sel.prompt, step=128, key="c_prompt")
    output = c[2].number_input("Output tokens", min_value=1, max_value=1 << 20, value=sel.output, step=64, key="c_output")
    st.subheader("Latency targets")
    c = st.columns(4)
    ttft = _target(c[0], "TTFT", 500, "c_ttft", "time to first token")
    tpot = _target(c[1], "TPOT", 50, "c_tpot", "time per output token")
    e2e = _target(c[2], "End-to-end", 0, "c_e2e", "whole request")
    pct = c[3].selectbox("Percentile", (50, 90, 95, 99), index=1, key="c_pct")
    with st.expander("Candidates", expanded=False):
        gids = gpu_ids()
        c = st.columns(4)
        gpus = c[0].multiselect("GPUs", gids, default=list(gids), key="c_gpus")
        tps = c[1].multiselect("TP", TP_OPTIONS[:4], default=list(TP_OPTIONS[:4]), key="c_tps")
        fmts = format_ids()
        wdef = list(dict.fromkeys([w for w in (sel.weights, "bf16", "fp8", "awq-4bit-g128") if w in fmts]))
        weights = c[2].multiselect("Weights", fmts, default=wdef, key="c_weights")
        kvs = c[3].multiselect("KV dtype", tuple(kvmod.KV_DTYPES), default=[sel.kv_dtype], key="c_kv")
    if not (gpus and tps and weights and kvs):
        st.warning("Choose at least one GPU, TP degree, weight format and KV dtype.")
        return
    df = core.capacity_plan(sel.model, sel.text, float(rate), int(prompt), int(output), ttft, tpot, e2e, int(pct),
                            tuple(gpus), tuple(int(t) for t in tps), tuple(weights), tuple(kvs), sel.engine)
    if df.empty:
        st.warning("No candidate to rank.")
        return
    ranked = df  # plan_capacity ranks: those that meet the targets first, cheapest first
    meets = ranked["status"].astype(str).str.startswith("meets")
    ok = ranked[meets]
    if len(ok):
        best = ok.iloc[0]
        how = "simulated" if best["status"] == "meets" else "mean-value model"
        st.success(f"Cheapest plan that meets the targets: **{int(best['gpus_total'])} x {best['gpu']}** "
                   f"({int(best['replicas'])} replica(s) of TP={int(best['tp'])}, {best['weights']} weights, "
                   f"{best['kv_dtype']} KV, max_num_seqs {int(best['batch'])}) at "
                   f"{fmt.usd(float(best['usd_per_hour']))}/h, "
                   f"{fmt.usd(float(best['cost_usd_per_1m_output_tokens']))} per 1M output tokens ({how}).",
                   icon=":material/check_circle:")
        top = ok.head(12).copy()
        top["plan"] = (top["gpus_total"].astype(int).astype(str) + " x " + top["gpu"].astype(str) + " TP"
                       + top["tp"].astype(str) + " " + top["weights"].astype(str) + " " + top["kv_dtype"].astype(str))
        top["label"] = top["usd_per_hour"].map(lambda v: f"${v:,.2f}")
        st.plotly_chart(figures.bars(top, "plan", "usd_per_hour", "The cheapest plans that meet the targets",
                                     "USD per hour", text="label"))
    else:
        st.warning("No candidate meets the targets; the reasons are in the table. Relax a target, add GPU types or "
                   "larger TP, or quantize.")
    cols = [c for c in FIRST if c in ranked] + [c for c in ranked if c not in FIRST]
    shown = ranked[cols].round(4)
    st.subheader(f"All {len(shown):,} candidates, ranked")
    tables.show(shown, "capacity_plan", "cap")
    st.caption(f"Ranked: plans that meet every target first, cheapest first ('meets' = checked at p{pct} by the "
               "continuous-batching simulation; 'meets (mean-value)' = not simulated, meets in the mean-value "
               "model); then the others with why they fail.")
    failing = ranked.loc[~meets, "failed"].astype(str)
    if len(failing):
        why = failing.value_counts().rename_axis("failed on").reset_index(name="candidates")
        with st.expander("Why the others fail (counts)"):
            tables.show(pd.DataFrame(why), "capacity_fail_reasons", "capwhy")


page.run(body, "Capacity plan", "How many of which GPUs does this workload need to meet its latency targets, "
         "and what is the cheapest way?")
