"""Page 5: capacity plan. A workload and latency targets in; ranked plans out, cheapest first, with the
reason each other candidate fails (planner.slo.plan_capacity)."""

import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, state, tables, urlstate
from dashboard.i18n import t
from dashboard.state import TP_OPTIONS, Selection, format_ids, gpu_label, session_gpu_ids
from planner import kv as kvmod
from planner.memory import SERVERS
from planner.simulate import DISTRIBUTIONS
from planner.slo import PERCENTILES

SIMULATE_TOP, SIM_REQUESTS = core.CAPACITY_SIMULATE_TOP, core.CAPACITY_SIM_REQUESTS

PP_OPTIONS = state.PP_OPTIONS
DEFAULT_KV = ("bf16", "fp8")   # both tried unless narrowed: fp8 KV often halves the GPUs a workload needs
TARGETS = (("ttft", "TTFT", 500.0, "time to first token"), ("tpot", "TPOT", 50.0, "time per output token"),
           ("e2e", "End-to-end", 0.0, "the whole request"))


def url_fields(gids: tuple[str, ...]) -> tuple[urlstate.Field, ...]:
    """The page's inputs as URL parameters (c_...): workload, targets, percentile and candidates."""
    F = urlstate.Field
    return (F("c_rate", "float", low=0.01, high=1e6), F("c_prompt", "int", low=1, high=1 << 20),
            F("c_output", "int", low=1, high=1 << 20), F("c_dist", "one", DISTRIBUTIONS),
            F("c_max_tokens", "int", low=0, high=1 << 20),
            *(F(f"c_{k}_on", "bool") for k, *_ in TARGETS),
            *(F(f"c_{k}", "float", low=1.0, high=600_000.0) for k, *_ in TARGETS),
            F("c_pct", "one", PERCENTILES), F("c_gpus", "many", gids), F("c_tps", "many", TP_OPTIONS),
            F("c_pps", "many", PP_OPTIONS), F("c_weights", "many", format_ids()),
            F("c_kv", "many", tuple(kvmod.KV_DTYPES)), F("c_server", "one", SERVERS))


def url_defaults(sel: Selection) -> dict:
    return {"c_rate": 5.0, "c_prompt": sel.prompt, "c_output": sel.output, "c_dist": DISTRIBUTIONS[0], "c_max_tokens": 0,
            **{f"c_{k}_on": default > 0 for k, _, default, _ in TARGETS},
            **{f"c_{k}": default or 10_000.0 for k, _, default, _ in TARGETS},
            "c_pct": 90, "c_gpus": [], "c_tps": [], "c_pps": [], "c_weights": [],
            "c_kv": [k for k in DEFAULT_KV if k in kvmod.KV_DTYPES], "c_server": SERVERS[0]}


def _target(col, k: str, label: str, help: str) -> float | None:
    on = col.checkbox(t("{label} target").format(label=t(label)), key=f"c_{k}_on")
    v = col.number_input(f"{t(label)} (ms)", min_value=1.0, max_value=600_000.0, step=10.0, key=f"c_{k}",
                         help=t(help) + t(" (used when its box is ticked)"))
    return v / 1e3 if on else None


def _dollars(text: str) -> str:
    """The core's sentence (bundled GPU and format ids, numbers) with its $ signs kept from becoming LaTeX."""
    return str(text).replace("$", "\\$")


def shown_columns(pct: int) -> list[str]:
    """The columns of the ranked table (all of them: the CSV and the "every column" view), in order; the
    percentile's simulated latencies in ms."""
    return ["status", "plan", "gpu", "tp", "pp", "weights", "kv_dtype", "replicas", "gpus_total", "batch", "usd_per_hour",
            "cost_usd_per_1m_output_tokens", f"sim_ttft_p{pct}_ms", f"sim_tpot_p{pct}_ms", f"sim_e2e_p{pct}_ms",
            "mean_ttft_ms", "mean_tpot_ms", "capacity_headroom", "latency_headroom", "server", "server_version",
            "evaluated_by", "failed", "reason"]


def main_columns(pct: int, targets: tuple[str, ...]) -> list[str]:
    """The ranked table's columns at first sight (it fits a 1280-pixel screen): the plan in one column, its
    cost, the simulated latencies that have a target, and why; the rest is under "Every column"."""
    return ["status", "plan", "batch", "usd_per_hour", "cost_usd_per_1m_output_tokens",
            *(f"sim_{k}_p{pct}_ms" for k in targets), "reason"]


# the ranked table's headers as the screen shows them (the CSV keeps the names with their units)
HEADERS = {"status": "status", "plan": "plan", "gpu": "GPU", "tp": "TP", "pp": "PP", "weights": "weights",
           "kv_dtype": "KV dtype", "replicas": "replicas", "gpus_total": "GPUs in all", "batch": "batch per replica",
           "usd_per_hour": "$ per hour", "cost_usd_per_1m_output_tokens": "$ per 1M output tokens",
           "mean_ttft_ms": "TTFT mean-value (ms)", "mean_tpot_ms": "TPOT mean-value (ms)",
           "capacity_headroom": "capacity headroom", "latency_headroom": "latency headroom", "server": "server",
           "server_version": "server version", "evaluated_by": "evaluated by", "failed": "failed on",
           "reason": "why"}
# the compact table's short headers, each with its long name and meaning as the tooltip
SHORT = {"plan": ("plan", "GPUs in all x GPU, TP and PP per replica, weights / KV dtype"),
         "batch": ("batch", "batch per replica: concurrent requests each replica holds"),
         "usd_per_hour": ("$/h", "$ per hour, every replica"),
         "cost_usd_per_1m_output_tokens": ("$/1M out", "$ per 1M output tokens"),
         "reason": ("why", "why the plan was not simulated, or why it is rejected (failed on: under Every column); "
                            "drag the column's edge to widen it")}
CELLS = ("status", "evaluated_by", "failed")   # the core's words in these columns are shown translated


# the compact table's column widths in pixels: with the sidebar open, a 1280-pixel screen leaves about 818
# for the main area; "why" takes what the latency columns leave of COMPACT_WIDTH
WIDTHS = {"status": 130, "plan": 185, "batch": 50, "usd_per_hour": 58, "cost_usd_per_1m_output_tokens": 68, "sim": 70}
COMPACT_WIDTH = 805


def column_config(pct: int, compact: bool = False, targets: tuple[str, ...] = ("ttft", "tpot")) -> dict:
    """Labels (and, for the compact table, short headers with tooltips, widths and number formats)."""
    sim = {f"sim_{m}_p{pct}_ms": f"{label} p{pct} (ms, simulated)" for m, label in
           (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "End-to-end"))}
    if not compact:
        return {k: st.column_config.Column(t(v)) for k, v in {**HEADERS, **sim}.items()}
    Col, Num, w = st.column_config.Column, st.column_config.NumberColumn, WIDTHS
    why = COMPACT_WIDTH - sum(v for k, v in w.items() if k != "sim") - w["sim"] * len(targets)
    out = {"status": Col(t("status"), width=w["status"]),
           "plan": Col(t("plan"), help=t(SHORT["plan"][1]), width=w["plan"]),
           "batch": Num(t("batch"), help=t(SHORT["batch"][1]), width=w["batch"], format="%d"),
           "usd_per_hour": Num("$/h", help=t(SHORT["usd_per_hour"][1]), width=w["usd_per_hour"], format="%.2f"),
           "cost_usd_per_1m_output_tokens": Num(t("$/1M out"), help=t(SHORT["cost_usd_per_1m_output_tokens"][1]),
                                                width=w["cost_usd_per_1m_output_tokens"], format="%.3f"),
           "reason": Col(t("why"), help=t(SHORT["reason"][1]), width=max(why, 100))}
    for m, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "E2E")):
        out[f"sim_{m}_p{pct}_ms"] = Num(f"{label} p{pct}", width=w["sim"], format="%.1f",
                                        help=t("{long}: the simulated p{pct} in ms").format(
                                            long=t(sim[f"sim_{m}_p{pct}_ms"]), pct=pct))
    return out


def plan_params(row, sel: Selection, prompt: int, output: int) -> dict[str, str]:
    """A ranked plan as the sidebar's parameters (state.apply_params): the Plan page opens this plan, PP
    included."""
    return {"gpu": str(row["gpu"]), "tp": str(int(row["tp"])), "pp": str(int(row["pp"])), "weights": str(row["weights"]),
            "kv": str(row["kv_dtype"]), "gpus": str(int(row["gpus_total"])), "batch": str(int(row["batch"])),
            "prompt": str(prompt), "output": str(output), "engine": sel.engine,
            **({"server": str(row["server"])} if isinstance(row.get("server"), str) and row["server"] else {})}


def _open_in_plan(params: dict[str, str]) -> None:
    state.apply_params(params)
    st.session_state["_goto_plan"] = True


def open_in_plan(ok: pd.DataFrame, sel: Selection, prompt: int, output: int) -> None:
    """Pick a ranked plan and open it on the Plan page (the sidebar takes its GPU, TP, PP, formats, GPUs, batch)."""
    rows = ok[ok["pp"].fillna(1).astype(int).isin(state.PP_OPTIONS)].head(12)
    if rows.empty:
        return
    labels = dict(zip(rows.index, [f"{n}. {p}" for n, p in enumerate(rows["plan"].astype(str), 1)], strict=True))
    c = st.columns([3, 1], vertical_alignment="bottom")
    pick = c[0].selectbox(t("Open a ranked plan on the Plan page"), list(labels), format_func=labels.get, key="c_open")
    c[1].button(t("Open in Plan"), key="c_open_go", on_click=_open_in_plan, icon=":material/open_in_new:",
                args=(plan_params(rows.loc[pick], sel, prompt, output),))
    if st.session_state.pop("_goto_plan", False):
        st.switch_page("dashboard/pages/plan.py")


def plan_label(d: pd.DataFrame) -> pd.Series:
    """Each candidate in a few words: "2 x H100-SXM TP2 PP2 fp8/bf16" (no count where none was sized)."""
    count = d["gpus_total"].map(lambda n: f"{int(n)} x " if pd.notna(n) and n > 0 else "")
    pp = d["pp"].map(lambda p: f" PP{int(p)}" if pd.notna(p) and p > 1 else "")
    return (count + d["gpu"].astype(str) + " TP" + d["tp"].map(lambda v: str(int(v)) if pd.notna(v) else "?") + pp
            + " " + d["weights"].astype(str) + "/" + d["kv_dtype"].astype(str))


def ranked_table(df: pd.DataFrame, pct: int) -> pd.DataFrame:
    """The core's ranking as shown: seconds to ms, the failed column only where the plan is rejected."""
    d = df.copy()
    d["plan"] = plan_label(d)
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
    st.caption(t("Model: {model}; engine: {engine}. Candidates: every bundled GPU x TP x weight format x KV dtype "
                 "unless narrowed below (an empty list searches that axis whole). Change the inputs, then press **Plan "
                 "capacity**: the search bounds every candidate, builds only those that could be cheapest and "
                 "simulates the winner (about a second; the same inputs again are instant).").format(
                     model=fmt.plain(sel.model), engine=sel.engine))
    gids = session_gpu_ids()
    fields = url_fields(gids)
    urlstate.seed(fields, url_defaults(sel))
    with st.form("capacity_form", border=False):
        st.subheader(t("Workload"))
        c = st.columns(5)
        rate = c[0].number_input(t("Requests per second"), min_value=0.01, max_value=1e6, step=1.0, key="c_rate")
        prompt = c[1].number_input(t("Prompt tokens (mean)"), min_value=1, max_value=1 << 20, step=128, key="c_prompt")
        output = c[2].number_input(t("Output tokens (mean)"), min_value=1, max_value=1 << 20, step=64, key="c_output")
        dist = c[3].selectbox(t("Length distribution"), DISTRIBUTIONS, key="c_dist",
                              help=t("fixed: every request the mean; uniform on [1, 2 x mean - 1]; exponential"))
        max_tokens = c[4].number_input(t("max_tokens (0: none)"), min_value=0, max_value=1 << 20, step=64,
                                       key="c_max_tokens",
                                       help=t("the requests' length cap: outputs stop there or at EOS. TensorRT-LLM "
                                            "reserves prompt + max_tokens of KV per request at admission"))
        st.subheader(t("Latency targets"))
        c = st.columns(4)
        ttft, tpot, e2e = (_target(c[i], k, label, helptext) for i, (k, label, _, helptext) in enumerate(TARGETS))
        pct = c[3].selectbox(t("Percentile"), PERCENTILES, key="c_pct",
                             help=t("the simulated percentile the targets are checked at"))
        with st.expander(t("Candidates (empty: the whole default space)"), expanded=False):
            c = st.columns(3)
            gpus = c[0].multiselect(t("GPUs", "list"), gids, key="c_gpus", placeholder=t("every bundled GPU"), format_func=gpu_label,
                                    help=t("empty: every bundled GPU (those without a price are listed as rejected); "
                                         "a GPU defined in the sidebar's form can be picked here"))
            tps = c[1].multiselect(t("TP (tensor parallel)"), TP_OPTIONS, key="c_tps", placeholder="1, 2, 4, 8, 16",
                                   help=t("empty: 1, 2, 4 and 8 where they split the attention heads"))
            pps = c[2].multiselect(t("PP (pipeline stages)"), PP_OPTIONS, key="c_pps", placeholder=t("only where needed"),
                                   help=t("empty: pipeline stages only where one node cannot hold the weights; "
                                        "a list applies to every TP"))
            c = st.columns(3)
            weights = c[0].multiselect(t("Weights"), format_ids(), key="c_weights", placeholder=t("what each GPU runs well"),
                                       help=t("empty: bf16, fp8 and fp8-block where the GPU has fp8, and the "
                                            "checkpoint's own format"))
            kvs = c[1].multiselect(t("KV dtype"), tuple(kvmod.KV_DTYPES), key="c_kv",
                                   placeholder=t("bf16, and fp8 where the GPU has it"),
                                   help=t("the KV cache dtypes to try (the sidebar's KV dtype does not limit the "
                                        "search); empty: bf16, and fp8 where the GPU has fp8"))
            server = c[2].selectbox(t("Serving engine"), SERVERS, key="c_server",
                                    help=t("its start-up KV pool and scheduler (newest release in profiles/engines)"))
        st.form_submit_button(t("Plan capacity"), type="primary", key="c_submit", icon=":material/search:")
    urlstate.write(fields)
    if not (ttft or tpot or e2e):
        st.warning(t("Set at least one latency target (TTFT, TPOT or end-to-end)."))
        return
    df = core.capacity_plan(sel.model, sel.text, float(rate), int(prompt), int(output), ttft, tpot, e2e, int(pct),
                            tuple(gpus), tuple(int(x) for x in tps), tuple(weights), tuple(kvs), sel.engine,
                            dist, SIMULATE_TOP, SIM_REQUESTS, server, tuple(int(p) for p in pps),
                            int(max_tokens) or None)
    if df.empty:
        st.warning(t("No candidate to rank."))
        return
    ok = df[df["status"] != "rejected"]
    if len(ok):
        st.success(t("Best plan: **{verdict}**.").format(verdict=_dollars(df.attrs.get("verdict", ""))),
                   icon=":material/check_circle:")
        top = ok.head(12).copy()
        top["plan"] = plan_label(top)
        top["label"] = top["usd_per_hour"].map(lambda v: f"${v:,.2f}/h")
        st.plotly_chart(figures.hbars(top.assign(status=top["status"].map(t)), "plan", "usd_per_hour",
                                      "The best plans that meet the targets, in rank order", "USD per hour (all replicas)",
                                      color="status", text="label"))
        st.caption(t("Batches here are sized at continuous batching's average KV occupancy (each sequence holds its "
                   "prompt and, on average, half its output). The Plan page checks the peak, every sequence at its "
                   "full length, so it may say a batch from here does not fit at peak and name the largest that does."))
        open_in_plan(top, sel, int(prompt), int(output))
    else:
        st.warning(t("{verdict}. The reasons are in the table: relax a target, lower the rate, add GPU types or "
                     "larger TP, or quantize.").format(
                         verdict=_dollars(df.attrs.get("verdict", "No candidate meets the targets"))),
                   icon=":material/warning:")
    shown = ranked_table(df, int(pct))
    st.subheader(t("All {n:,} candidates, ranked").format(n=len(shown)))
    targets = tuple(k for k, v in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e)) if v)
    tables.show(shown, "capacity_plan", "cap", cells=CELLS, column_config=column_config(int(pct), True, targets),
                column_order=[c for c in main_columns(int(pct), targets) if c in shown.columns])
    with st.expander(t("Every column ({n}): GPU, TP, PP, replicas, mean-value latencies, headroom, engine, failed "
                       "on").format(n=len(shown.columns))):
        tables.grid(shown, CELLS, column_config=column_config(int(pct)))
    n = df.attrs.get("search", {})
    st.caption(t("Ranked by the planner: {candidates} candidates; {bound} rejected by an optimistic roofline bound "
                 "(memory, latency alone, GPUs), {built} plans built with the serving engine in order of that bound and "
                 "ranked by the mean-value model (**meets (mean-value)**), {simulated} simulated ({requests} requests "
                 "each, replicas added until the targets hold: **meets**). A plan whose bound cannot beat the {top} "
                 "confirmed is not built (failed on: cost). Latencies in ms; an unstable queue shows no finite TTFT; "
                 "headroom is the unused fraction of capacity or of the tightest target.").format(
                     candidates=n.get("candidates", len(df)), bound=n.get("rejected_by_bound", 0),
                     built=n.get("built", 0), simulated=n.get("simulated", 0), requests=SIM_REQUESTS, top=SIMULATE_TOP))
    failing = df.loc[df["status"] == "rejected"]
    if len(failing):
        why = (failing["failed"].fillna("other").astype(str).value_counts().rename_axis("failed on")
               .reset_index(name="candidates"))
        with st.expander(t("Why {n:,} candidates fail (counts)").format(n=len(failing))):
            tables.show(why, "capacity_fail_reasons", "capwhy", cells=("failed on",))


page.run(body, t("Capacity plan"), t("How many of which GPUs does this workload need to meet its latency targets, "
         "and what is the cheapest way?"))
