"""Page 1: plan one deployment. Fits or not and why, the memory bar, limits, latency, throughput, cost,
and every number's formula with this plan's values substituted."""

import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, page, tables
from dashboard.state import Selection


def metrics_table(p: dict, f: dict) -> pd.DataFrame:
    rows = [
        ("fits", "yes" if p["fits"] else "no", ""),
        ("weights per GPU", fmt.gib(p["weights_bytes_per_gpu"]), "GiB"),
        ("KV cache per GPU", fmt.gib(p["kv_cache_bytes_per_gpu"]), "GiB"),
        ("activations per GPU", fmt.gib(p["activation_bytes_per_gpu"]), "GiB"),
        ("overhead per GPU", fmt.gib(p["overhead_bytes_per_gpu"]), "GiB"),
        ("total per GPU", fmt.gib(p["memory_total_bytes_per_gpu"]), "GiB"),
        ("usable capacity per GPU", fmt.gib(p["capacity_bytes_per_gpu"]), "GiB"),
        ("largest batch", fmt.count(p["max_batch"]), "requests"),
        ("longest context at this batch", fmt.count(f["max_context"]), f"tokens ({f['max_context_limited_by']})"),
        ("TTFT (mean, as a benchmark measures it)", fmt.ms(p["ttft_s"]), "ms"),
        ("TTFT p90", fmt.ms(p.get("ttft_p90_s", p["ttft_s"])), "ms"),
        ("TTFT lower bound (one prompt alone)", fmt.ms(p["ttft_lower_bound_s"]), "ms"),
        ("TPOT (mean)", fmt.ms(p["tpot_s"]), "ms"),
        ("TPOT p90", fmt.ms(p.get("tpot_p90_s", p["tpot_s"])), "ms"),
        ("end-to-end latency (mean)", fmt.ms(p["e2e_latency_s"]), "ms"),
        ("latency from", p["latency_source"], ""),
        ("output tokens/s (deployment)", fmt.per_s(p["deployment_output_tokens_per_s"]), "tokens/s"),
        ("requests/s (deployment)", fmt.per_s(p["deployment_requests_per_s"], 2), "requests/s"),
        ("replicas", fmt.count(p["replicas"]), f"of TP={p['tp']} x PP={p['pp']}"),
        ("$ per 1M output tokens", fmt.usd(p["cost_usd_per_1m_output_tokens"]), "USD"),
        ("$ per 1M tokens (input + output)", fmt.usd(p["cost_usd_per_1m_tokens"]), "USD"),
        ("$ per hour (deployment)", fmt.usd(p["deployment_usd_per_hour"]), "USD"),
        ("prefill bound", p["bound"]["prefill"], ""),
        ("decode bound", p["bound"]["decode"], ""),
        ("prefill share of GPU time", f"{p['prefill_share_of_gpu_time']:.1%}", "of each replica's busy time"),
        ("efficiencies", p["provenance"], ""),
    ]
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])


def band_help(p: dict, metric: str) -> str | None:
    """The measured spread of ``metric`` for this plan's engine (held-out runs), as a tooltip."""
    b = p.get("latency_bands", {}).get(metric)
    if not b:
        return None
    return (f"Real runs landed between {fmt.ms(b['low_s'])} and {fmt.ms(b['high_s'])} for this prediction: the "
            f"{b['coverage']} range of the errors on {b['n']:,} held-out published runs ({b['group']}).")


def band_sentence(p: dict) -> str:
    bands = p.get("latency_bands", {})
    parts = [f"{m.upper()} {fmt.ms(b['low_s'])} to {fmt.ms(b['high_s'])}" for m, b in bands.items()]
    if not parts:
        return ("No published run backs this engine and GPU: the latency has no measured error band "
                "(docs/validation.md).")
    b = next(iter(bands.values()))
    return (f"Where real runs would land ({b['coverage']} of the held-out errors on {b['n']:,} published runs, "
            f"{b['group']}): " + "; ".join(parts) + ".")


def explain(sel: Selection, p: dict, f: dict, ins: dict, r: dict) -> None:
    """Each number's formula with this plan's values substituted."""
    ctx = sel.prompt + sel.output
    layers, kvh, hd = ins["layers"], ins["num_kv_heads"], ins["head_dim"]
    bpe = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}.get(sel.kv_dtype)
    kvb = core.kv_curve(sel.model, sel.text, sel.kv_dtype, sel.engine, sel.tp, sel.batch, (ctx,))[0]
    st.markdown("**KV cache** (the seed's formula: 2 for K and V)")
    if bpe is not None:
        seed = 2 * layers * kvh * hd * ctx * sel.batch * bpe
        st.code(f"KV = 2 x layers x kv_heads x head_dim x seq_len x batch x bytes\n"
                f"   = 2 x {layers} x {kvh} x {hd} x {ctx:,} x {sel.batch} x {bpe} B\n"
                f"   = {seed:,.0f} B = {fmt.gib(seed)}\n"
                f"planner (per GPU, TP={sel.tp}, {sel.engine} layout): {fmt.gib(kvb)}", language="text")
    else:
        st.code(f"KV = 2 x {layers} x {kvh} x {hd} x {ctx:,} x {sel.batch} x bits/8 "
                f"({sel.kv_dtype}: group scales and zeros included)\nplanner: {fmt.gib(kvb)}", language="text")
    notes = []
    if sel.tp > 1:
        notes.append(f"TP={sel.tp} splits the KV heads over the GPUs (at least one head per GPU)")
    if sel.engine == "paged":
        notes.append("the paged engine rounds each sequence up to whole blocks of 16 tokens")
    if ins["sliding_window"]:
        notes.append(f"sliding-window layers keep only the last {ins['sliding_window']:,} tokens")
    kinds = set(ins["layer_kinds"])
    if kinds - {"full"}:
        notes.append(f"layer kinds {ins['layer_kinds']} cache differently (MLA latent, SSM state, windows)")
    if notes:
        st.caption("Where the planner differs from the seed's formula: " + "; ".join(notes) + ".")
    st.markdown("**Weights**")
    st.code(f"weights = params x bits_per_weight / 8 / TP = {ins['params_total']:,} x {ins['bits_per_weight']:.3f} / 8 / "
            f"{sel.tp}\n        ~ {fmt.gib(ins['weight_bytes'] / sel.tp)} (planner, per GPU: "
            f"{fmt.gib(p['weights_bytes_per_gpu'])}; norms and small K/V replicate under TP)", language="text")
    st.markdown("**Total against capacity**")
    st.code(f"total = weights + KV + activations + overhead\n"
            f"      = {fmt.gib(p['weights_bytes_per_gpu'])} + {fmt.gib(p['kv_cache_bytes_per_gpu'])} + "
            f"{fmt.gib(p['activation_bytes_per_gpu'])} + {fmt.gib(p['overhead_bytes_per_gpu'])} = "
            f"{fmt.gib(p['memory_total_bytes_per_gpu'])}\n"
            f"capacity = memory x utilisation = {fmt.gib(r['total_memory_bytes'])} x "
            f"{r['gpu_memory_utilization'] if sel.engine == 'paged' else 1.0} = {fmt.gib(p['capacity_bytes_per_gpu'])}",
            language="text")
    peak, bw = r["peak_flops"] * r["eff_compute"] * r["compute_factor"], r["bandwidth_bytes_per_s"] * r["eff_memory"] * r["memory_factor"]
    st.markdown(f"**TTFT** (prefill: roofline, {p['bound']['prefill']}-bound)")
    st.code(f"t_prefill = max(FLOPs / (peak x eff), bytes / (bandwidth x eff)) + overheads\n"
            f"          = max({p['prefill_flops']:.3e} / ({r['peak_flops'] / 1e12:,.0f}e12 x {r['eff_compute'] * r['compute_factor']:.3f}), "
            f"{p['prefill_bytes']:.3e} / ({r['bandwidth_bytes_per_s'] / 1e12:.2f}e12 x {r['eff_memory'] * r['memory_factor']:.3f}))\n"
            f"          = max({fmt.ms(p['prefill_flops'] / peak)}, {fmt.ms(p['prefill_bytes'] / bw)}) + overheads"
            f" -> TTFT lower bound = {fmt.ms(p['ttft_lower_bound_s'])}", language="text")
    st.markdown(f"**TPOT** (decode step: {p['bound']['decode']}-bound, reads the weights and every sequence's KV once)")
    st.code(f"t_step = max(FLOPs / (peak x eff), bytes / (bandwidth x eff)) + overheads\n"
            f"       = max({p['decode_step_flops']:.3e} / {peak / 1e12:,.0f}e12, {p['decode_step_bytes']:.3e} / "
            f"{bw / 1e12:.2f}e12) = max({fmt.ms(p['decode_step_flops'] / peak)}, {fmt.ms(p['decode_step_bytes'] / bw)})\n"
            f"TPOT = mean step over the output + prefill interference ({fmt.ms(p['prefill_interference_s'])}) = "
            f"{fmt.ms(p['tpot_mean_value_s'])}", language="text")
    st.markdown("**Latency, throughput, cost** (Little's law: `batch` requests in flight; mean-value figures)")
    st.code(f"e2e = TTFT + (output - 1) x TPOT = {fmt.ms(p['ttft_lower_bound_s'])} + {sel.output - 1} x "
            f"{fmt.ms(p['tpot_mean_value_s'])} = {fmt.ms(p['e2e_mean_value_s'])}\n"
            f"requests/s = batch / e2e x replicas = {sel.batch} / {p['e2e_mean_value_s']:.4f} s x {p['replicas']} = "
            f"{fmt.per_s(p['deployment_requests_per_s'], 2)}\n"
            f"output tokens/s = requests/s x output = {p['deployment_requests_per_s']:.3f} x {sel.output} = "
            f"{fmt.per_s(p['deployment_output_tokens_per_s'])}\n"
            f"$ per 1M output tokens = $/h per replica / (tokens/s per replica x 3600) x 1e6 = {p['usd_per_hour']:.2f} / "
            f"({p['output_tokens_per_s']:,.1f} x 3600) x 1e6 = {fmt.usd(p['cost_usd_per_1m_output_tokens'])}",
            language="text")
    st.markdown("**Under load** (the headline TTFT and TPOT)")
    st.code(f"{p['latency_source']}\nmean TTFT = {fmt.ms(p['ttft_s'])} (p50 {fmt.ms(p.get('ttft_p50_s', p['ttft_s']))}, "
            f"p90 {fmt.ms(p.get('ttft_p90_s', p['ttft_s']))}); mean TPOT = {fmt.ms(p['tpot_s'])}", language="text")
    st.caption(f"Efficiencies: {r['provenance']} (memory {r['eff_memory']:.3f}, compute {r['eff_compute']:.3f}); "
               f"GPU memory: {r['memory_source']}. Formulas and sources: docs/formulas.md, "
               "docs/formulas-serving.md (the simulation).")


def body(sel: Selection) -> None:
    st.caption(page.describe(sel) + f"; {sel.gpus} GPU(s) in all")
    p = core.plan(sel.model, sel.text, *sel.dep, sel.batch, sel.prompt, sel.output, sel.gpus)
    f = core.fit(sel.model, sel.text, *sel.dep, sel.batch, sel.prompt, sel.output)
    ins = core.inspect(sel.model, sel.text, sel.weights, sel.kv_dtype, sel.engine, sel.prompt + sel.output, sel.batch)
    r = core.roofline(sel.model, sel.text, *sel.dep)
    if p["fits"]:
        st.success(f"Fits: {fmt.gib(p['memory_total_bytes_per_gpu'])} of {fmt.gib(p['capacity_bytes_per_gpu'])} "
                   f"usable per GPU ({fmt.gib(p['headroom_bytes_per_gpu'])} headroom).", icon=":material/check_circle:")
    else:
        st.warning(f"Does not fit: {p['reason']}.", icon=":material/warning:")
    parts = pd.DataFrame({"component": ["weights", "KV cache", "activations", "overhead"],
                          "bytes": [p["weights_bytes_per_gpu"], p["kv_cache_bytes_per_gpu"],
                                    p["activation_bytes_per_gpu"], p["overhead_bytes_per_gpu"]]})
    st.plotly_chart(figures.memory_bar(parts, p["capacity_bytes_per_gpu"], r["total_memory_bytes"]))
    c = st.columns(4)
    c[0].metric("Largest batch", fmt.count(p["max_batch"]), help=f"at {sel.prompt + sel.output:,} tokens per request")
    c[1].metric("Longest context", fmt.count(f["max_context"]),
                help=f"tokens per request at batch {sel.batch}, limited by {f['max_context_limited_by']}")
    c[2].metric("TTFT", fmt.ms(p["ttft_s"]), help=band_help(p, "ttft"))
    c[3].metric("TPOT", fmt.ms(p["tpot_s"]), help=band_help(p, "tpot"))
    c = st.columns(4)
    c[0].metric("TTFT p90", fmt.ms(p.get("ttft_p90_s", p["ttft_s"])))
    c[1].metric("TTFT, one prompt alone", fmt.ms(p["ttft_lower_bound_s"]),
                help="The lower bound: this prompt's prefill with nothing queued and no other request in the pass")
    c[2].metric("TPOT p90", fmt.ms(p.get("tpot_p90_s", p["tpot_s"])))
    c[3].metric("End-to-end (mean)", fmt.ms(p["e2e_latency_s"]))
    st.caption(f"Latency: {p['latency_source']}.")
    c = st.columns(4)
    c[0].metric("Output tokens/s", fmt.per_s(p["deployment_output_tokens_per_s"]),
                help=f"{p['replicas']} replica(s) of {p['gpus_per_replica']} GPU(s)")
    c[1].metric("Requests/s", fmt.per_s(p["deployment_requests_per_s"], 2))
    c[2].metric("$ / 1M output tokens", fmt.usd(p["cost_usd_per_1m_output_tokens"]),
                help=f"{fmt.usd(p['usd_per_hour'])}/h per replica")
    c[3].metric("$ / 1M tokens (in+out)", fmt.usd(p["cost_usd_per_1m_tokens"]))
    st.caption(f"Prefill is {p['bound']['prefill']}-bound, decode {p['bound']['decode']}-bound; prefill takes "
               f"{p['prefill_share_of_gpu_time']:.1%} of the GPU time; efficiencies: {p['provenance']}. "
               + band_sentence(p))
    with st.expander("Explain: every number's formula with this plan's values", expanded=False):
        explain(sel, p, f, ins, r)
    st.subheader("All numbers")
    tables.show(metrics_table(p, f), "plan", "plan")
    if ins["assumptions"]:
        with st.expander("Assumptions the config parser made"):
            st.markdown("\n".join(f"- {fmt.plain(a)}" for a in ins["assumptions"]))


page.run(body, "Plan one deployment",
         "Does this model fit on this GPU at this batch and length, and how fast and how cheap will it be?")
