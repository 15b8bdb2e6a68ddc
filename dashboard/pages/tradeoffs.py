"""Page 2: trade-offs. Latency against throughput over batch (the Pareto frontier) for several GPUs and
formats at once; KV memory against context length; cost per 1M tokens across GPUs."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import core, figures, page, tables
from dashboard.state import Selection, format_ids, gpu_ids
from planner import kv as kvmod

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTEXTS = tuple(int(x) for x in np.unique(np.geomspace(256, 1 << 20, 29).round(-1)))


def _default_formats(sel: Selection) -> list[str]:
    fmts = format_ids()
    picks = [sel.weights] + [f for f in ("fp8", "awq-4bit-g128", "gptq-4bit-g128", "Q4_K_M") if f in fmts]
    return list(dict.fromkeys(picks))[:3]


def _frontier(df: pd.DataFrame) -> pd.DataFrame:
    try:
        from planner.sweep import pareto_frontier
    except ImportError:
        return df[figures.frontier_mask(df, "tokens_per_s_per_user", "output_tokens_per_s_per_gpu")]
    return pareto_frontier(df, x="tokens_per_s_per_user", y="output_tokens_per_s_per_gpu")


def pareto_section(sel: Selection) -> None:
    st.subheader("Latency vs throughput over batch size")
    gids = gpu_ids()
    c1, c2, c3 = st.columns([2, 2, 1])
    default_gpus = list(dict.fromkeys([sel.gpu] + [g for g in gids if g != sel.gpu]))[:3]
    chosen_gpus = c1.multiselect("GPUs", gids, default=default_gpus, key="to_gpus")
    chosen_fmts = c2.multiselect("Weight formats", format_ids(), default=_default_formats(sel), key="to_fmts")
    max_b = c3.select_slider("Largest batch", BATCHES, value=512, key="to_maxb")
    batches = tuple(b for b in BATCHES if b <= max_b)
    frames, skipped = [], []
    for g in chosen_gpus:
        for w in chosen_fmts:
            try:
                df = core.batch_curve(sel.model, sel.text, g, sel.tp, w, sel.kv_dtype, sel.engine, sel.prompt,
                                      sel.output, batches)
            except Exception as e:  # noqa: BLE001 - one impossible pair must not hide the others
                skipped.append(f"{g} / {w}: {e}")
                continue
            frames.append(df[df["fits"]])
    if skipped:
        st.caption("Left out: " + "; ".join(skipped))
    if not frames or all(f.empty for f in frames):
        st.warning("No chosen GPU and format fits this model at these lengths: add GPUs (TP) or quantize.")
        return
    df = pd.concat(frames, ignore_index=True)
    df["series"] = df["gpu"] + " · " + df["weights"]
    front = _frontier(df)
    st.plotly_chart(figures.pareto(df, front))
    st.caption("Each line is one GPU and format; each point a batch size (up-right is better). Larger batches "
               "raise throughput per GPU but slow every user's tokens. The dashed line is the Pareto frontier: "
               "no other choice is better on both axes. Only batches that fit in memory are drawn.")
    shown = front.sort_values("tokens_per_s_per_user")[["gpu", "weights", "batch", "tokens_per_s_per_user",
                                                          "output_tokens_per_s_per_gpu", "ttft_s", "tpot_s",
                                                          "cost_usd_per_1m_output_tokens"]]
    shown = shown.rename(columns={"ttft_s": "ttft_ms", "tpot_s": "tpot_ms"}).assign(
        ttft_ms=lambda d: d["ttft_ms"] * 1e3, tpot_ms=lambda d: d["tpot_ms"] * 1e3).round(3)
    with st.expander("Frontier points (table)"):
        tables.show(shown, "pareto_frontier", "pareto")


def kv_section(sel: Selection) -> None:
    st.subheader("KV cache memory vs context length")
    p = core.plan(sel.model, sel.text, *sel.dep, sel.batch, sel.prompt, sel.output)
    budget = p["capacity_bytes_per_gpu"] - p["weights_bytes_per_gpu"] - p["activation_bytes_per_gpu"] - p["overhead_bytes_per_gpu"]
    rows = []
    for d in kvmod.KV_DTYPES:
        kvb = core.kv_curve(sel.model, sel.text, d, sel.engine, sel.tp, sel.batch, CONTEXTS)
        rows.append(pd.DataFrame({"kv_dtype": d, "context": CONTEXTS, "kv_cache_gib": kvb / 2**30}))
    df = pd.concat(rows, ignore_index=True)
    st.plotly_chart(figures.lines(df, "context", "kv_cache_gib", "kv_dtype",
                                  f"KV cache per GPU at batch {sel.batch}", "context (tokens per request)", "GiB",
                                  hlines={f"room for KV on {sel.gpu}": budget / 2**30} if budget > 0 else None,
                                  log_x=True))
    st.caption("The KV cache grows linearly with context (flat for sliding-window and SSM layers past their window). "
               "Where a line crosses the dotted limit, the batch no longer fits: shorten the context, shrink the "
               "batch, or store the cache in fewer bits.")
    wide = df.pivot(index="context", columns="kv_dtype", values="kv_cache_gib").reset_index().round(4)
    with st.expander("KV cache per context (table)"):
        tables.show(wide, "kv_vs_context", "kvctx")


def cost_section(sel: Selection) -> None:
    st.subheader("Cost per 1M output tokens across GPUs")
    rows = []
    for g in gpu_ids():
        try:
            p = core.plan(sel.model, sel.text, g, sel.tp, sel.weights, sel.kv_dtype, sel.engine, sel.batch,
                          sel.prompt, sel.output)
        except Exception as e:  # noqa: BLE001
            rows.append({"gpu": g, "note": str(e)[:120]})
            continue
        row = {"gpu": g, "usd_per_hour": p["usd_per_hour"], "batch": sel.batch,
               "usd_per_1m_at_batch": p["cost_usd_per_1m_output_tokens"] if p["fits"] else np.nan,
               "largest_batch": p["max_batch"], "usd_per_1m_at_largest_batch": np.nan, "note": "" if p["fits"] else
               "does not fit at this batch"}
        if p["max_batch"] > 0:
            best = core.plan(sel.model, sel.text, g, sel.tp, sel.weights, sel.kv_dtype, sel.engine,
                             int(min(p["max_batch"], 4096)), sel.prompt, sel.output)
            row["usd_per_1m_at_largest_batch"] = best["cost_usd_per_1m_output_tokens"]
        elif not p["fits"]:
            row["note"] = "does not fit even at batch 1"
        rows.append(row)
    df = pd.DataFrame(rows)
    long = df.melt(id_vars=["gpu"], value_vars=["usd_per_1m_at_batch", "usd_per_1m_at_largest_batch"],
                   var_name="operating point", value_name="usd").dropna()
    long["operating point"] = long["operating point"].map({"usd_per_1m_at_batch": f"batch {sel.batch}",
                                                           "usd_per_1m_at_largest_batch": "largest batch that fits"})
    long["label"] = long["usd"].map(lambda v: f"${v:.3f}")
    if len(long):
        st.plotly_chart(figures.bars(long, "gpu", "usd", f"$ per 1M output tokens, {sel.model} ({sel.weights}, TP={sel.tp})",
                                     "USD per 1M output tokens", color="operating point", text="label"))
    st.caption("Cost = GPU price per hour / tokens per hour. A faster, pricier GPU can be cheaper per token; "
               "filling the memory with a larger batch is the biggest lever. Prices: profiles/gpus/*.json.")
    tables.show(df.round(4), "cost_across_gpus", "cost")


def body(sel: Selection) -> None:
    st.caption(page.describe(sel))
    page.guarded(lambda: pareto_section(sel))
    page.guarded(lambda: kv_section(sel))
    page.guarded(lambda: cost_section(sel))


page.run(body, "Trade-offs", "Latency against throughput, memory against context, cost across GPUs.")
