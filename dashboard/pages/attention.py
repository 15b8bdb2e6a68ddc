"""Page 3: attention and the KV cache. MHA against GQA against MQA against MLA (and the model's own
sliding-window pattern) for the chosen model; KV dtype choices; the uptraining caveat."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, tables
from dashboard.i18n import label, t
from dashboard.state import Selection
from planner import kv as kvmod
from planner.errors import PlannerInputError

CONTEXTS = tuple(int(x) for x in np.unique(np.geomspace(256, 1 << 18, 25).round(-1)))


def body(sel: Selection) -> None:
    st.caption(page.describe(sel))
    ins = core.inspect(sel.model, sel.text, sel.weights, sel.kv, sel.engine, sel.prompt + sel.output, sel.batch)
    kinds = ", ".join(f"{n} {t(k)}" for k, n in ins["layer_kinds"].items())
    st.markdown(t("**{model}**: {heads} query heads, {kv_heads} KV heads of {dim} dims, {layers} layers ({kinds})").format(
                    model=fmt.plain(ins["model"]), heads=ins["num_heads"], kv_heads=ins["num_kv_heads"],
                    dim=ins["head_dim"], layers=ins["layers"], kinds=kinds)
                + (t(", sliding window {n:,} tokens").format(n=ins["sliding_window"]) if ins["sliding_window"] else "")
                + t(". Attention: **{attention}**.").format(attention=label(ins["attention"])))
    rows, curves = [], []
    for kind, name in core.variants(sel.model, sel.text):
        try:
            r = core.attention_row(sel.model, sel.text, kind, *sel.dep, sel.batch, sel.prompt, sel.output)
        except PlannerInputError as e:  # e.g. TP that does not divide a regrouped model
            st.caption(f"{fmt.plain(label(name))}: {page.input_error_text(e)}")
            continue
        rows.append({"variant": name, "cached_per_token_per_layer": r["cached_per_token_per_layer"],
                     "kv_bytes_per_token": r["kv_bytes_per_token"],
                     "kv_gib_at_batch_and_context": r["kv_cache_bytes"] / 2**30,
                     "largest_batch": r["max_batch"], "longest_context": r["max_context"],
                     "tpot_ms": r["tpot_s"] * 1e3, "output_tokens_per_s": r["output_tokens_per_s"],
                     "fits": r["fits"]})
        kvb = core.variant_kv_curve(sel.model, sel.text, kind, sel.kv, sel.engine, sel.tp, sel.batch, CONTEXTS)
        curves.append(pd.DataFrame({"variant": label(name), "context": CONTEXTS, "kv_gib": kvb / 2**30}))
    df = pd.DataFrame(rows)
    st.subheader(t("KV cache per token (all layers), largest batch, longest context"))
    if df.empty:  # every variant refused (the reasons are above): nothing to compare
        st.warning(t("No attention variant of this model can be planned on {tp} x {gpu}: change the TP degree or the "
                     "GPU.").format(tp=sel.tp, gpu=sel.gpu), icon=":material/warning:")
        return
    c = st.columns(min(len(df), 6))
    for col, row in zip(c, df.itertuples(index=False), strict=False):
        col.metric(label(row.variant), f"{row.kv_bytes_per_token / 1024:,.0f} KiB",
                   help=t("{variant}: KV bytes per token (all layers); largest batch {batch:,}; longest context "
                          "{context:,}").format(variant=label(row.variant), batch=row.largest_batch, context=row.longest_context))
    st.plotly_chart(figures.bars(df.assign(text=df["largest_batch"].map(lambda v: f"{v:,}"), variant=df["variant"].map(label)),
                                 "variant",
                                 "largest_batch", t("Largest batch that fits on {gpu} at {n:,} tokens").format(
                                     gpu=sel.gpu, n=sel.prompt + sel.output), "largest batch (requests)", text="text",
                                 height=340))
    tables.show(df.round(3), "attention_variants", "attn", cells=("variant", "cached_per_token_per_layer"))
    st.subheader(t("KV cache vs context"))
    budget = core.result(sel.request(simulate=False, stages=False)).memory.kv_budget_bytes_per_gpu  # MemoryModel.kv_budget_bytes
    cdf = pd.concat(curves, ignore_index=True)
    st.plotly_chart(figures.lines(cdf, "context", "kv_gib", "variant", t("KV cache per GPU at batch {batch}").format(batch=sel.batch),
                                  "context (tokens)", "KV cache per GPU (GiB)", log_x=True, log_y=True,
                                  hlines={t("room for KV on {gpu}").format(gpu=sel.gpu): budget / 2**30} if budget > 0 else None))
    st.caption(t("Per token, every layer stores a key and a value for each KV head: "
               "`2 x kv_heads x head_dim x bytes`. MHA keeps one per query head, GQA one per group, MQA one in all; "
               "MLA stores one compressed latent per token instead (DeepSeek-V2). A sliding window caps what a "
               "layer keeps at the window."))
    st.info(t("**Uptraining caveat** (the seed, after Ainslie et al. 2023): regrouping a trained model's heads is not "
            "free. MQA loses quality and needs extra training (\"uptraining\"); even with 10% of the original "
            "training data a gap remained. GQA stays close to MHA, and about 5% of the original data closes the "
            "gap. The MHA/GQA/MQA/MLA rows above other than the model's own are what-ifs, not checkpoints."),
            icon=":material/school:")
    st.subheader(t("KV cache dtype"))
    drows = []
    for name, d in kvmod.KV_DTYPES.items():
        try:
            f = core.fit(sel.model, sel.text, sel.gpu, sel.tp, sel.weights, name, sel.engine, sel.batch, sel.prompt,
                         sel.output)
            ki = core.inspect(sel.model, sel.text, sel.weights, name, sel.engine, sel.prompt + sel.output, sel.batch)
        except PlannerInputError as e:
            st.caption(f"{name}: {page.input_error_text(e)}")  # the core's message, in a translated frame
            continue
        drows.append({"kv_dtype": name, "bits_per_element": d.bits, "kv_bytes_per_token": ki["kv_bytes_per_token"],
                      "kv_gib_at_batch_and_context": ki["kv_cache_bytes"] / 2**30, "largest_batch": f["max_batch"],
                      "longest_context": f["max_context"], "fits": f["fits"], "source": d.source})
    tables.show(pd.DataFrame(drows).round(3), "kv_dtypes", "kvd", cells=("source",))
    st.caption(t("Current choice: {kv}, {gib} at batch {batch} x {n:,} tokens ({engine} layout, the whole cache before "
                 "TP splits it). fp8 halves the cache at a small accuracy cost; int8/int4 add per-group scales and "
                 "zeros.").format(kv=sel.kv, gib=fmt.gib(ins["kv_cache_bytes"]), batch=sel.batch,
                                  n=sel.prompt + sel.output, engine=sel.engine))


page.run(body, t("Attention & KV cache"), t("How the attention kind and the cache's dtype set the KV cache, and "
         "with it the batch and context that fit."))
