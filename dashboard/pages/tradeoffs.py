"""Page 2: trade-offs. Latency against throughput over batch (the Pareto frontier) for several GPUs and
formats at once; KV memory against context length; cost per 1M tokens across GPUs."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, tables, urlstate
from dashboard.i18n import t
from dashboard.state import Selection, format_ids, gpu_ids, gpu_label
from planner import kv as kvmod
from planner.errors import PlannerInputError
from planner.memory import MAX_BATCH
from planner.sweep import pareto_frontier

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTEXTS = tuple(int(x) for x in np.unique(np.geomspace(256, 1 << 20, 29).round(-1)))


def _default_formats(sel: Selection) -> list[str]:
    fmts = format_ids(sel.weights)
    picks = [sel.weights] + [f for f in ("fp8", "awq-4bit-g128", "gptq-4bit-g128", "Q4_K_M") if f in fmts]
    return list(dict.fromkeys(picks))[:3]


def pareto_section(sel: Selection) -> None:
    st.subheader(t("Latency vs throughput over batch size"))
    gids = gpu_ids()
    c1, c2, c3 = st.columns([2, 2, 1])
    default_gpus = list(dict.fromkeys([sel.gpu] + [g for g in gids if g != sel.gpu]))[:3]
    F = urlstate.Field
    fields = (F("to_gpus", "many", gids), F("to_fmts", "many", format_ids(sel.weights)), F("to_maxb", "one", BATCHES))
    urlstate.seed(fields, {"to_gpus": default_gpus, "to_fmts": _default_formats(sel), "to_maxb": 512})
    chosen_gpus = c1.multiselect(t("GPUs", "list"), gids, key="to_gpus", format_func=gpu_label)
    chosen_fmts = c2.multiselect(t("Weight formats"), format_ids(sel.weights), key="to_fmts")
    max_b = c3.select_slider(t("Largest batch"), BATCHES, key="to_maxb")
    urlstate.write(fields)
    if not chosen_gpus or not chosen_fmts:
        st.info(t("Choose at least one GPU and one weight format."))
        return
    batches = tuple(b for b in BATCHES if b <= max_b)
    try:
        df, skipped = core.sweep_grid(sel.model, sel.text, tuple(chosen_gpus), tuple(chosen_fmts), (sel.kv_dtype,),
                                      (sel.tp,), sel.engine, batches, (sel.prompt,), (sel.output,), sel.server)
    except PlannerInputError as e:  # every combination impossible: the core says why
        page.show_input_error(e)
        return
    if skipped:
        st.caption(t("Left out: ") + "; ".join(fmt.plain(f"{s['gpu']} / {s['weights']}: {s['reason']}") for s in skipped))
    fit = df[df["fits"]].copy()
    if fit.empty:
        st.warning(t("No chosen GPU and format fits this model at these lengths: add GPUs (TP) or quantize."))
        return
    fit["series"] = fit["gpu"].astype(str) + " · " + fit["weights"].astype(str)
    front = pareto_frontier(df, x="tokens_per_s_per_user", y="output_tokens_per_s_per_gpu")
    st.plotly_chart(figures.pareto(fit, front))
    st.caption(t("Each line is one GPU and format; each point a batch size (up-right is better). Larger batches "
               "raise throughput per GPU but slow every user's tokens. The dashed line is the Pareto frontier "
               "(the best trade-offs): no other choice is better on both axes. Only batches that fit in "
               "memory are drawn."))
    shown = front[["gpu", "weights", "batch", "tokens_per_s_per_user", "output_tokens_per_s_per_gpu",
                   "ttft_lower_bound_s", "tpot_mean_value_s", "cost_usd_per_1m_output_tokens"]].copy()
    shown["gpu"], shown["weights"] = shown["gpu"].astype(str), shown["weights"].astype(str)
    shown = shown.rename(columns={"ttft_lower_bound_s": "ttft_one_prompt_ms", "tpot_mean_value_s": "tpot_ms"}).assign(
        ttft_one_prompt_ms=lambda d: d["ttft_one_prompt_ms"] * 1e3, tpot_ms=lambda d: d["tpot_ms"] * 1e3).round(3)
    with st.expander(t("Frontier points ({n}, table)").format(n=len(shown))):
        tables.show(shown.reset_index(drop=True), "pareto_frontier", "pareto", cells=("weights",), column_config={
            "gpu": "GPU", "batch": "batch", "tokens_per_s_per_user": "tokens/s per user",
            "output_tokens_per_s_per_gpu": "output tokens/s per GPU", "ttft_one_prompt_ms": "TTFT lower bound (ms)",
            "tpot_ms": "TPOT mean-value (ms)", "cost_usd_per_1m_output_tokens": "$ per 1M output tokens"})


def kv_section(sel: Selection) -> None:
    st.subheader(t("KV cache memory vs context length"))
    budget = core.result(sel.request(simulate=False, stages=False)).memory.kv_budget_bytes_per_gpu  # MemoryModel.kv_budget_bytes
    rows = []
    for d in kvmod.KV_DTYPES:
        kvb = core.kv_curve(sel.model, sel.text, d, sel.engine, sel.tp, sel.batch, CONTEXTS)
        rows.append(pd.DataFrame({"kv_dtype": d, "context": CONTEXTS, "kv_cache_gib": kvb / 2**30}))
    df = pd.concat(rows, ignore_index=True)
    st.plotly_chart(figures.lines(df, "context", "kv_cache_gib", "kv_dtype",
                                  t("KV cache per GPU at batch {batch}").format(batch=sel.batch),
                                  "context (tokens per request)", "KV cache per GPU (GiB)",
                                  hlines={t("room for KV on {gpu}").format(gpu=sel.gpu): budget / 2**30}
                                  if budget > 0 else None,
                                  log_x=True, log_y=True))
    st.caption(t("The KV cache grows linearly with context (flat for sliding-window and SSM layers past their window). "
               "Where a line crosses the dotted limit, the batch no longer fits: shorten the context, shrink the "
               "batch, or store the cache in fewer bits."))
    wide = df.pivot(index="context", columns="kv_dtype", values="kv_cache_gib").reset_index().round(4)
    with st.expander(t("KV cache per context (table)")):
        tables.show(wide, "kv_vs_context", "kvctx")


def cost_table(sel: Selection) -> pd.DataFrame:
    """Per GPU: $ per 1M output tokens at the sidebar's batch and at the largest batch that fits (one sweep)."""
    gids = gpu_ids()
    largest = {}
    for g in gids:
        try:
            largest[g] = int(min(core.fit(sel.model, sel.text, g, sel.tp, sel.weights, sel.kv, sel.engine,
                                          sel.batch, sel.prompt, sel.output)["max_batch"], MAX_BATCH))
        except PlannerInputError:
            largest[g] = 0
    batches = tuple(sorted({sel.batch, *(b for b in largest.values() if b > 0)}))
    df, skipped = core.sweep_grid(sel.model, sel.text, gids, (sel.weights,), (sel.kv_dtype,), (sel.tp,), sel.engine,
                                  batches, (sel.prompt,), (sel.output,))
    why = {s["gpu"]: s["reason"] for s in skipped}
    rows = []
    for g in gids:
        d = df[df["gpu"] == g]
        if d.empty:
            rows.append({"gpu": g, "usd_per_hour": np.nan, "batch": sel.batch, "usd_per_1m_at_batch": np.nan,
                         "largest_batch": 0, "usd_per_1m_at_largest_batch": np.nan,
                         "note": why.get(g, "not in the sweep")[:160]})
            continue
        at = d[d["batch"] == sel.batch].iloc[0]
        big = d[d["batch"] == largest[g]]
        price = float(at["usd_per_hour"])
        note = "" if at["fits"] else ("does not fit even at batch 1" if largest[g] == 0 else "does not fit at this batch")
        if not price:
            note = (note + "; " if note else "") + "no price in its profile"
        rows.append({"gpu": g, "usd_per_hour": price, "batch": sel.batch,
                     "usd_per_1m_at_batch": float(at["cost_usd_per_1m_output_tokens"]) if at["fits"] and price else np.nan,
                     "largest_batch": largest[g],
                     "usd_per_1m_at_largest_batch": float(big["cost_usd_per_1m_output_tokens"].iloc[0])
                     if len(big) and largest[g] > 0 and price else np.nan,
                     "note": note})
    return pd.DataFrame(rows)


def cost_section(sel: Selection) -> None:
    st.subheader(t("Cost per 1M output tokens across GPUs"))
    df = cost_table(sel)
    long = df.melt(id_vars=["gpu"], value_vars=["usd_per_1m_at_batch", "usd_per_1m_at_largest_batch"],
                   var_name="operating point", value_name="usd").dropna()
    long["operating point"] = long["operating point"].map({"usd_per_1m_at_batch": t("batch {batch}").format(batch=sel.batch),
                                                           "usd_per_1m_at_largest_batch": t("largest batch that fits")})
    long["label"] = long["usd"].map(fmt.usd)
    if len(long):
        st.plotly_chart(figures.bars(long, "gpu", "usd", t("$ per 1M output tokens, {model} ({weights}, TP={tp})").format(
                                         model=sel.model, weights=sel.weights, tp=sel.tp),
                                     "USD per 1M output tokens", color="operating point", text="label"))
    else:
        st.warning(t("The model fits on none of the GPUs at these lengths: add GPUs (TP) or quantize."))
    st.caption(t("Cost = GPU price per hour / tokens per hour. A faster, pricier GPU can be cheaper per "
               "token; filling the memory with a larger batch is the biggest lever. A dash: the plan does not "
               "fit or the GPU has no price (see `note`). Prices: profiles/gpus/*.json. The sweep across GPUs uses the "
               "mean-value model; the Plan page's cost follows its simulated latency, so the two differ where queueing "
               "and batched prefills matter."))
    tables.show(df.round(4), "cost_across_gpus", "cost", cells=("note",))


def body(sel: Selection) -> None:
    st.caption(page.describe(sel, served=True))
    page.guarded(lambda: pareto_section(sel))
    page.guarded(lambda: kv_section(sel))
    page.guarded(lambda: cost_section(sel))


page.run(body, t("Trade-offs"), t("Latency against throughput, memory against context, cost across GPUs."))
