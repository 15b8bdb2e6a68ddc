"""Page 4: quantization. Every weight format side by side (bits per weight, memory, which GPUs it fits,
decode speed), and GGUF partial offload: layers on the GPU against tokens/s."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, tables, urlstate
from dashboard.i18n import t
from dashboard.state import Selection, format_ids, gpu_ids
from planner import profiles

FAMILY_NOTES = {
    "float": "16/32-bit floats: the unquantized baseline.",
    "fp8": "8-bit floats with per-tensor or per-block scales; native on Hopper/Ada/Blackwell tensor cores.",
    "bitsandbytes": "LLM.int8() keeps outlier input columns in 16 bit; NF4 stores 4-bit normal-float codes "
                    "(absmax per block of 64), dequantized on the fly.",
    "gptq": "Post-training: each layer quantized so its output on a calibration set matches the original "
            "(second-order error correction). Slow to produce, fast int4 kernels (Marlin/ExLlama).",
    "awq": "Activation-aware: scales up the ~1% of weights on high-activation channels before rounding. "
           "Fast to produce, keeps quality.",
    "gguf": "llama.cpp's single-file format: block-wise k-quants mixing bit widths per tensor; runs on CPU, GPU, "
            "Apple silicon, and can split the layers between GPU and CPU.",
    "mxfp4": "OCP microscaling fp4: 4-bit elements with one 8-bit exponent per block of 32.",
    "compressed-tensors": "llm-compressor's checkpoint format (vLLM): int4 or int8 weights (W4A16, W8A8) with "
                          "per-group or per-channel scales, or fp8.",
    "nvfp4": "NVIDIA fp4: 4-bit elements with an fp8 scale per block of 16 and one fp32 scale per tensor; native on "
             "Blackwell tensor cores.",
}


def formats_table(sel: Selection) -> pd.DataFrame:
    """Every format: bits/weight and memory (whole model), the GPUs where it fits at the sidebar's batch,
    lengths and TP, and its decode speed on the selected GPU (one sweep over the formats)."""
    table = profiles.formats()
    fids, gids = format_ids(), gpu_ids()
    sizes = core.format_rows(sel.model, sel.text, fids).set_index("format")
    mb = core.max_batches(sel.model, sel.text, gids, fids, sel.tp, sel.kv, sel.engine, sel.prompt, sel.output)
    speed, skipped = core.sweep_grid(sel.model, sel.text, (sel.gpu,), fids, (sel.kv_dtype,), (sel.tp,), sel.engine,
                                     (sel.batch,), (sel.prompt,), (sel.output,))
    speed = speed.assign(weights=speed["weights"].astype(str)).set_index("weights")
    why = {s["weights"]: s["reason"] for s in skipped}
    rows = []
    for fid in fids:
        f = table.get(fid)
        row = {"format": fid, "label": f.label, "family": f.family, "compute": f.compute_dtype,
               "bits_per_weight": sizes.loc[fid, "bits_per_weight"], "weights_gib": sizes.loc[fid, "weight_bytes"] / 2**30}
        if fid in speed.index:
            p = speed.loc[fid]
            row.update(fits_on_selected_gpu=bool(p["fits"]), tpot_ms=float(p["tpot_mean_value_s"]) * 1e3,
                       tokens_per_s_per_user=float(p["tokens_per_s_per_user"]),
                       output_tokens_per_s=float(p["output_tokens_per_s"]))
        else:
            row.update(fits_on_selected_gpu=False, tpot_ms=np.nan, tokens_per_s_per_user=np.nan,
                       output_tokens_per_s=np.nan)
        fits = [g for g in gids if mb.loc[fid, g] >= sel.batch]
        row["fits_on"] = ", ".join(fits) if fits else "none"
        row["note"] = sizes.loc[fid, "error"] or why.get(fid, "")
        rows.append(row)
    return pd.DataFrame(rows)


def formats_section(sel: Selection) -> None:
    df = formats_table(sel)
    st.subheader(t("Every weight format for {model}").format(model=fmt.plain(sel.model)))
    ok = df.dropna(subset=["weights_gib"]) if "weights_gib" in df else df.iloc[:0]
    cap = core.result(sel.request(simulate=False, stages=False)).memory.capacity_bytes_per_replica
    c1 = c2 = st.container()
    c1.plotly_chart(figures.bars(ok.assign(text=ok["bits_per_weight"].map(lambda v: f"{v:.2f} b")), "format",
                                 "weights_gib", "Weight memory (whole model)", "GiB", color="family", text="text",
                                 hlines={t("{tp} x {gpu} usable").format(tp=sel.tp, gpu=sel.gpu): cap / 2**30}))
    sp = ok[ok["fits_on_selected_gpu"]].dropna(subset=["tokens_per_s_per_user"])
    if len(sp):
        c2.plotly_chart(figures.bars(sp.assign(text=sp["tokens_per_s_per_user"].map(lambda v: f"{v:.0f}")), "format",
                                     "tokens_per_s_per_user", t("Decode speed on {tp} x {gpu}, batch {batch}").format(
                                         tp=sel.tp, gpu=sel.gpu, batch=sel.batch),
                                     "tokens/s per user", color="family", text="text"))
    else:
        c2.info(t("No format fits on {tp} x {gpu} at batch {batch}: no decode speed to draw.").format(
            tp=sel.tp, gpu=sel.gpu, batch=sel.batch))
    st.caption(t("Fewer bits per weight means less memory and, in the memory-bound decode, fewer bytes read per "
               "token, so faster decoding; dequantization kernels give some of that back (profiles/kernels.json). "
               "Decode speed is drawn for the formats that fit on the selected GPU. `fits_on`: GPUs where this model fits "
               "at the sidebar's batch, lengths and TP."))
    tables.show(df.round(3), "weight_formats", "fmts", cells=("fits_on",))
    with st.expander(t("What each family does")):
        for fam in dict.fromkeys(df["family"]):
            st.markdown(f"- **{fam}**: {t(FAMILY_NOTES[fam]) if fam in FAMILY_NOTES else ''}")


def offload_section(sel: Selection) -> None:
    st.subheader(t("GGUF partial offload (llama.cpp `-ngl`)"))
    ggufs = [f for f in format_ids() if profiles.formats().formats[f].family == "gguf"]
    if not ggufs:
        st.info(t("No GGUF formats in profiles/weight_formats.json."))
        return
    c1, c2 = st.columns(2)
    default = "Q4_K_M" if "Q4_K_M" in ggufs else ggufs[0]
    fields = (urlstate.Field("q_gguf", "one", tuple(ggufs)), urlstate.Field("q_ctx", "int", low=1, high=1 << 20))
    urlstate.seed(fields, {"q_gguf": default, "q_ctx": 4096})
    w = c1.selectbox(t("GGUF format"), ggufs, key="q_gguf")
    ctx = c2.number_input(t("Context (tokens)"), min_value=1, max_value=1 << 20, step=1024, key="q_ctx")
    urlstate.write(fields)
    best, df = core.offload_curve(sel.model, sel.text, sel.gpu, w, int(ctx))
    c = st.columns(3)
    c[0].metric(t("Layers on the GPU"), f"{best['gpu_layers']} / {best['layers']}")
    c[1].metric(t("GPU memory used"), fmt.gib(best["gpu_bytes"]))
    c[2].metric(t("Left in CPU RAM"), fmt.gib(best["cpu_bytes"]))
    st.plotly_chart(figures.offload(df, best["gpu_layers"], best["layers"]))
    st.caption(t("Each layer left on the CPU is read from host memory at every token, which is far slower than the "
               "GPU's; the speed climbs steeply only when the last layers move onto the GPU. One GGUF file holds "
               "the whole model, so the split is a load-time flag."))
    tables.show(df.round(4), "gguf_offload", "gguf")


def body(sel: Selection) -> None:
    st.caption(page.describe(sel))
    page.guarded(lambda: formats_section(sel))
    page.guarded(lambda: offload_section(sel))


page.run(body, t("Quantization"), t("Smaller weights: how many bits each format really stores, what fits where, "
         "and how fast it decodes."))
