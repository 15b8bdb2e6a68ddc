"""Page 1: plan one deployment. Fits or not and why, the memory bar, limits, latency, throughput, cost,
and every number's formula with this plan's values substituted."""

import pandas as pd
import streamlit as st

from dashboard import commands_panel, core, figures, fmt, page, state, tables
from dashboard.i18n import label, t
from dashboard.state import Selection
from planner.result import PlanResult

# both shown when the engine can run the plan (PlanResult.runs: all of it fits, or it holds part and queues the
# rest, simulated; the throughput is then the queue's: the batch over the simulated mean end-to-end latency)
LATENCY = {"TTFT (mean, as a benchmark measures it)", "TTFT p90", "TTFT lower bound (one prompt alone)",
           "TPOT (mean)", "TPOT p90", "end-to-end latency (mean)"}
RATES = {"output tokens/s (deployment)", "requests/s (deployment)", "$ per 1M output tokens",
                "$ per 1M tokens (input + output)"}
NO_PLAN = "—"


def metrics_table(r: PlanResult) -> pd.DataFrame:
    """Every headline figure of the result, formatted for the screen (the download is ``download_row``)."""
    m, lat, th, c, w = r.memory, r.latency, r.throughput, r.cost, r.work
    rows = [
        ("fits", "yes" if r.fits else "no", ""),
        ("weights per GPU", fmt.gib(m.weights_bytes_per_gpu), "GiB"),
        ("KV cache per GPU", fmt.gib(m.kv_cache_bytes_per_gpu), "GiB"),
        ("activations per GPU", fmt.gib(m.activation_bytes_per_gpu), "GiB"),
        ("overhead per GPU", fmt.gib(m.overhead_bytes_per_gpu), "GiB"),
        ("total per GPU", fmt.gib(m.memory_total_bytes_per_gpu), "GiB"),
        ("usable capacity per GPU", fmt.gib(m.capacity_bytes_per_gpu), "GiB"),
        ("room for KV per GPU", fmt.gib(m.kv_budget_bytes_per_gpu), "GiB"),
        ("largest batch", fmt.count(m.max_batch), "requests"),
        ("longest context at this batch", fmt.count(m.max_context_tokens),
         f"{fmt.unit('tokens')} ({t(m.max_context_limited_by)})"),
        ("TTFT (mean, as a benchmark measures it)", fmt.ms(lat.ttft_s), "ms"),
        ("TTFT p90", fmt.ms(lat.percentile("ttft", 90)), "ms"),
        ("TTFT lower bound (one prompt alone)", fmt.ms(lat.ttft_lower_bound_s), "ms"),
        ("TPOT (mean)", fmt.ms(lat.tpot_s), "ms"),
        ("TPOT p90", fmt.ms(lat.percentile("tpot", 90)), "ms"),
        ("end-to-end latency (mean)", fmt.ms(lat.e2e_latency_s), "ms"),
        ("latency from", r.source("ttft_s"), ""),
        ("output tokens/s (deployment)", fmt.per_s(th.deployment_output_tokens_per_s), "tokens/s"),
        ("requests/s (deployment)", fmt.per_s(th.deployment_requests_per_s, 2), "requests/s"),
        ("replicas", fmt.count(r.replicas),
         t("of TP={tp} x PP={pp}").format(tp=r.request.deployment.tp, pp=r.request.deployment.pp)),
        ("$ per 1M output tokens", fmt.usd(c.cost_usd_per_1m_output_tokens), "USD"),
        ("$ per 1M tokens (input + output)", fmt.usd(c.cost_usd_per_1m_tokens), "USD"),
        ("$ per hour (deployment)", fmt.usd(c.deployment_usd_per_hour), "USD"),
        ("prefill bound", t(w.prefill_bound), ""),
        ("decode bound", t(w.decode_bound), ""),
        ("prefill share of GPU time", f"{w.prefill_share_of_gpu_time:.1%}", t("of each replica's busy time")),
        ("efficiencies", t(r.source("eff_compute")), ""),
    ]
    hidden = set() if r.runs else RATES | LATENCY
    rows = [(name, NO_PLAN if name in hidden else value, unit) for name, value, unit in rows]
    rows = [(t(name), t(value) if value in ("yes", "no") else value, fmt.unit(unit)) for name, value, unit in rows]
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])


def download_row(r: PlanResult) -> pd.DataFrame:
    """The plan page's CSV: the plan's names, then every figure as a number (units in the headers)."""
    return pd.DataFrame([{**r.labels(), **r.to_row()}])


def band_help(r: PlanResult, metric: str) -> str | None:
    """The measured spread of ``metric`` for this plan's engine (held-out runs), as a tooltip."""
    b = r.latency_bands.get(metric)
    if not b:
        return None
    return t("Real runs landed between {low} and {high} for this prediction: the {coverage} range of the errors on "
             "{n:,} held-out published runs ({group}).").format(low=fmt.ms(b["low_s"]), high=fmt.ms(b["high_s"]),
                                                                coverage=label(b["coverage"]), n=b["n"], group=b["group"])


def band_sentence(r: PlanResult) -> str:
    bands = r.latency_bands
    parts = [t("{metric} {low} to {high} ({coverage})").format(metric=m.upper(), low=fmt.ms(b["low_s"]),
                                                               high=fmt.ms(b["high_s"]), coverage=label(b["coverage"]))
             for m, b in bands.items()]
    if not parts:
        return t("No published run backs this engine and GPU: the latency has no measured error band "
                 "(docs/validation.md).")
    b = next(iter(bands.values()))
    return (t("Where real runs would land (ranges of the held-out errors on {n:,} published runs, {group}): ")
            .format(n=b["n"], group=b["group"]) + "; ".join(parts) + ".")


def explain(sel: Selection, r: PlanResult, ins: dict) -> None:
    """Each number's formula with this plan's values substituted (every value from the core)."""
    m, w, lat = r.memory, r.work, r.latency
    ctx = sel.prompt + sel.output
    seed = core.seed_kv(sel.model, sel.text, sel.kv, sel.batch, ctx)
    st.markdown(t("**KV cache** (the textbook formula: 2 for K and V)"))
    scales = t(", group scales included") if sel.kv.startswith("int") else ""
    st.code(f"KV = 2 x layers x kv_heads x head_dim x seq_len x batch x bytes\n"
            f"   = 2 x {seed['layers']} x {seed['kv_heads']} x {seed['head_dim']} x {ctx:,} x {sel.batch} x "
            f"{seed['bytes_per_element']:g} B ({sel.kv}{scales})\n"
            f"   = {seed['bytes']:,.0f} B = {fmt.gib(seed['bytes'])}\n"
            + t("planner (per GPU, TP={tp}, {engine} layout): {gib}").format(tp=sel.tp, engine=sel.engine,
                                                                            gib=fmt.gib(m.kv_cache_bytes_per_gpu)),
            language="text")
    notes = []
    if sel.tp > 1:
        notes.append(t("TP={tp} splits the KV heads over the GPUs (at least one head per GPU)").format(tp=sel.tp))
    if sel.engine == "paged":
        notes.append(t("the paged engine rounds each sequence up to whole blocks of {n} tokens").format(
            n=r.request.deployment.block_size))
    if ins["sliding_window"]:
        notes.append(t("sliding-window layers keep only the last {n:,} tokens").format(n=ins["sliding_window"]))
    if set(ins["layer_kinds"]) - {"full"}:
        notes.append(t("layer kinds {kinds} cache differently (MLA latent, SSM state, windows)").format(
            kinds=ins["layer_kinds"]))
    if notes:
        st.caption(t("Where the planner differs from the textbook formula: ") + "; ".join(notes) + ".")
    st.markdown(t("**Weights**"))
    st.code(f"weights = params x bits_per_weight / 8 = {ins['params_total']:,} x {ins['bits_per_weight']:.3f} / 8 = "
            + t("{gib} in all").format(gib=fmt.gib(ins["weight_bytes"])) + "\n"
            + t("per GPU, split over TP={tp} (norms and small K/V replicate): {gib} ({source})").format(
                tp=sel.tp, gib=fmt.gib(m.weights_bytes_per_gpu), source=r.source("weights_bytes_per_gpu")),
            language="text")
    st.markdown(t("**Total against capacity**"))
    st.code(f"total = weights + KV + activations + overhead\n"
            f"      = {fmt.gib(m.weights_bytes_per_gpu)} + {fmt.gib(m.kv_cache_bytes_per_gpu)} + "
            f"{fmt.gib(m.activation_bytes_per_gpu)} + {fmt.gib(m.overhead_bytes_per_gpu)} = "
            f"{fmt.gib(m.memory_total_bytes_per_gpu)}\n"
            f"capacity = memory x utilisation = {fmt.gib(m.gpu_memory_bytes)} x {m.gpu_memory_utilization} = "
            f"{fmt.gib(m.capacity_bytes_per_gpu)}\n"
            f"room for KV = {fmt.gib(m.kv_budget_bytes_per_gpu)} ({r.source('kv_budget_bytes_per_gpu')})",
            language="text")
    eff_c, eff_m = w.eff_compute * w.compute_factor, w.eff_memory * w.memory_factor
    st.markdown(t("**TTFT** (prefill: roofline, {bound}-bound)").format(bound=t(w.prefill_bound)))
    st.code(f"t_prefill = max(FLOPs / (peak x eff), bytes / (bandwidth x eff)) + overheads\n"
            f"          = max({w.prefill_flops:.3e} / ({w.peak_flops_per_s / 1e12:,.0f}e12 x {eff_c:.3f}), "
            f"{w.prefill_bytes:.3e} / ({w.bandwidth_bytes_per_s / 1e12:.2f}e12 x {eff_m:.3f}))\n"
            f"          = max({fmt.ms(w.prefill_compute_s)}, {fmt.ms(w.prefill_memory_s)}) + overheads"
            + t(" -> TTFT lower bound = {ms}").format(ms=fmt.ms(lat.ttft_lower_bound_s)), language="text")
    st.markdown(t("**TPOT** (decode step: {bound}-bound, reads the weights and every sequence's KV once)").format(
        bound=t(w.decode_bound)))
    st.code(f"t_step = max(FLOPs / (peak x eff), bytes / (bandwidth x eff)) + overheads\n"
            f"       = max({w.decode_step_flops:.3e} / ({w.peak_flops_per_s / 1e12:,.0f}e12 x {eff_c:.3f}), "
            f"{w.decode_step_bytes:.3e} / ({w.bandwidth_bytes_per_s / 1e12:.2f}e12 x {eff_m:.3f})) = "
            f"max({fmt.ms(w.decode_step_compute_s)}, {fmt.ms(w.decode_step_memory_s)})\n"
            + t("TPOT = mean step over the output + prefill interference ({interference}) = {tpot}").format(
                interference=fmt.ms(lat.prefill_interference_s), tpot=fmt.ms(lat.tpot_mean_value_s)), language="text")
    th, c = r.throughput, r.cost
    st.markdown(t("**Latency, throughput, cost** (Little's law: `batch` requests in flight; the simulated mean "
                  "end-to-end latency when simulated, else the mean-value one)"))
    # the cycle each client's request takes: e2e plus, when simulated, the client's return gap (serving.rates)
    cycle = sel.batch / th.requests_per_s if th.requests_per_s else float("nan")
    used = (f"(simulated mean e2e {lat.e2e_latency_s:.4f} s + return gap {cycle - lat.e2e_latency_s:.4f} s)"
            if lat.simulated else f"{lat.e2e_mean_value_s:.4f} s")
    st.code(f"e2e (mean-value) = TTFT + (output - 1) x TPOT = {fmt.ms(lat.ttft_lower_bound_s)} + ({sel.output} - 1) x "
            f"{fmt.ms(lat.tpot_mean_value_s)} = {fmt.ms(lat.e2e_mean_value_s)}\n"
            f"requests/s = batch / cycle x replicas = {sel.batch} / {used} x {r.replicas} = "
            f"{fmt.per_s(th.deployment_requests_per_s, 2)}\n"
            f"output tokens/s = requests/s x output = {th.deployment_requests_per_s:.3f} x {sel.output} = "
            f"{fmt.per_s(th.deployment_output_tokens_per_s)}\n"
            f"$ per 1M output tokens = $/h per replica / (tokens/s per replica x 3600) x 1e6 = {c.usd_per_hour:.2f} / "
            f"({th.output_tokens_per_s:,.1f} x 3600) x 1e6 = {fmt.usd(c.cost_usd_per_1m_output_tokens)}",
            language="text")
    st.markdown(t("**Under load** (the headline TTFT and TPOT)"))
    st.code(f"{r.source('ttft_s')}\n" + t("mean TTFT = {ttft} (p50 {p50}, p90 {p90}); mean TPOT = {tpot}").format(
        ttft=fmt.ms(lat.ttft_s), p50=fmt.ms(lat.percentile("ttft", 50)), p90=fmt.ms(lat.percentile("ttft", 90)),
        tpot=fmt.ms(lat.tpot_s)), language="text")
    st.caption(t("Efficiencies: {eff} (memory {mem:.3f}, compute {comp:.3f}); GPU memory: {source}. Formulas and "
                 "sources: docs/formulas.md, docs/formulas-serving.md (the simulation).").format(
                     eff=t(r.provenance["efficiencies"]), mem=w.eff_memory, comp=w.eff_compute,
                     source=r.source("gpu_memory_bytes")))


NOT_RUN = "The plan does not fit, so it cannot run: no latency, throughput or cost. See what makes it fit above."
t(NOT_RUN)  # noqa: B018 - the literal is translated where it is shown (tiles); this line marks it for the test


def status(r: PlanResult) -> None:
    """Fits or not, first; a plan that fits only at continuous batching's average occupancy says so."""
    m = r.memory
    if r.fits:
        st.success(t("Fits: {used} of {cap} usable per GPU ({room} headroom).").format(
            used=fmt.gib(m.memory_total_bytes_per_gpu), cap=fmt.gib(m.capacity_bytes_per_gpu),
            room=fmt.gib(m.headroom_bytes_per_gpu)), icon=":material/check_circle:")
    elif m.fits_avg_occupancy:
        st.warning(t("Does not fit at peak: {reason}. It fits at continuous batching's average occupancy (prompt + "
                     "half the output per sequence; up to batch {batch:,}), which is how the Capacity plan sizes "
                     "batches; this page checks the peak, every sequence at its full length.").format(
                         reason=label(r.reason), batch=m.max_batch_avg_occupancy),
                   icon=":material/warning:")
    else:
        st.warning(t("Does not fit: {reason}.").format(reason=label(r.reason)), icon=":material/error:")
    for note in r.notes:  # what the engine needs to start at all (planning._start_notes)
        st.warning(label(note) + ".", icon=":material/power_settings_new:")


def tiles(r: PlanResult, sel: Selection) -> None:
    """The key figures in two compact rows: latency (mean and p90, as a serving benchmark reports them),
    throughput and cost; a plan that cannot run shows a dash."""
    m, lat, th, cost = r.memory, r.latency, r.throughput, r.cost
    running = r.runs  # a batch over the engine's pool still runs, queued (PlanResult.runs): every tile has a figure
    sim = t("simulated") if lat.simulated else t("not simulated: the mean")

    def v(text: str) -> str:
        return text if running else NO_PLAN

    def h(text: str | None) -> str | None:
        return text if running else t(NOT_RUN)

    c = st.columns(6)
    c[0].metric(t("TTFT mean"), v(fmt.duration(lat.ttft_s)), help=h(t("Mean time to first token over the simulated requests, "
                "as a serving benchmark reports it. ") + (band_help(r, "ttft") or "")))
    c[1].metric(t("TTFT p90"), v(fmt.duration(lat.percentile("ttft", 90))), help=h(t("90th percentile ({sim}): queueing makes "
                "the tail far longer than the mean under load").format(sim=sim)))
    c[2].metric(t("TPOT mean"), v(fmt.ms(lat.tpot_s)), help=h(t("Mean time per output token. ") + (band_help(r, "tpot") or "")))
    c[3].metric(t("TPOT p90"), v(fmt.ms(lat.percentile("tpot", 90))), help=h(t("90th percentile ({sim})").format(sim=sim)))
    c[4].metric(t("Output tokens/s"), v(fmt.per_s(th.deployment_output_tokens_per_s)),
                help=h(t("all {n} replica(s) of {g} GPU(s)").format(n=r.replicas, g=r.gpus_per_replica)))
    c[5].metric(t("$ / 1M output tokens"), v(fmt.usd(cost.cost_usd_per_1m_output_tokens)),
                help=h(t("{usd} an hour per replica, over the output tokens it writes").format(usd=fmt.usd(cost.usd_per_hour))))
    c = st.columns(6)
    c[0].metric(t("Largest batch"), fmt.count(m.max_batch), help=t("at {tokens:,} tokens per request (peak); {avg:,} at average occupancy (prompt + half the "
                       "output)").format(tokens=sel.prompt + sel.output, avg=m.max_batch_avg_occupancy))
    c[1].metric(t("Longest context"), fmt.count(m.max_context_tokens),
                help=t("tokens per request at batch {batch}, limited by {limit}").format(
                    batch=sel.batch, limit=t(m.max_context_limited_by)))
    c[2].metric(t("TTFT lower bound"), v(fmt.ms(lat.ttft_lower_bound_s)),
                help=h(t("The lower bound: one prompt's prefill with nothing queued; the batch's other requests decode in its passes")))
    c[3].metric(t("End-to-end mean"), v(fmt.duration(lat.e2e_latency_s)))
    c[4].metric(t("Requests/s"), v(fmt.per_s(th.deployment_requests_per_s, 2)))
    c[5].metric(t("$ / 1M tokens (in+out)"), v(fmt.usd(cost.cost_usd_per_1m_tokens)),
                help=h(t("an hour's cost over every prompt and output token served in it")))
    if running and not r.fits:
        st.caption(t("The engine holds {held:,} of the {batch:,} requests at a time and queues the rest: the latency "
                     "above is simulated with that queue, and the throughput and cost are what the engine sustains "
                     "with it (the clients over the mean end-to-end latency).")
                   .format(held=m.max_batch, batch=sel.batch))


def remedies(r: PlanResult) -> None:
    """What makes the plan fit, one click each (planner.remedies: every change planned by the core)."""
    found = core.remedies(r.request)
    if not found:
        st.info(t("No single change makes it fit: try a larger GPU or several changes at once."))
        return
    st.markdown(t("**What makes it fit** (one change each, planned by the core):"))
    cols = st.columns(len(found))
    for col, rem in zip(cols, found, strict=True):
        used, cap = fmt.gib(rem.memory_total_bytes_per_gpu), fmt.gib(rem.capacity_bytes_per_gpu)
        verdict = (t("fits: {used} of {cap}") if rem.fits else t("still {used} of {cap}: not enough alone")).format(
            used=used, cap=cap)
        col.button(label(rem.short), key=f"remedy_{rem.kind}", on_click=state.apply_params, args=(dict(rem.params),),
                   type="primary" if rem.fits else "secondary",
                   help=t("{label}; per GPU after this change: {verdict}").format(label=label(rem.label), verdict=verdict),
                   icon=":material/check:" if rem.fits else None, use_container_width=True)
        col.caption(f"{label(rem.label)}: {verdict}")


def save_button(sel: Selection) -> None:
    if sel.text:
        st.button(t("Save this plan"), disabled=True, key="save_plan", icon=":material/bookmark_add:",
                  help=t("An uploaded model cannot be saved in a link: compare bundled or Hugging Face Hub models"))
        return
    params = sel.request().to_params()  # a Hub model by its id: from_params reads it back
    n = len(state.saved_plans())
    st.button(t("Save this plan ({n} saved)").format(n=n) if n else t("Save this plan"), key="save_plan",
              on_click=state.save_plan, args=(params,), icon=":material/bookmark_add:",
              help=t("Keep it for the Compare plans page (up to {n}; the link carries them)").format(n=state.MAX_SAVED))


def body(sel: Selection) -> None:
    r = core.result(sel.request())
    m = r.memory
    ins = core.inspect(sel.model, sel.text, sel.weights, sel.kv, sel.engine, sel.prompt + sel.output, sel.batch)
    c = st.columns([4, 1], vertical_alignment="center")
    with c[0]:
        status(r)
    with c[1]:
        save_button(sel)
    tiles(r, sel)
    if not r.fits:
        remedies(r)
    st.caption(page.describe(sel, plan_page=True, kv=r.request.deployment.kv_dtype) + t("; {n} GPU(s) in all. Latency: {source}. ").format(n=sel.gpus,
                                                                                          source=label(r.source("ttft_s")))
               + (band_sentence(r) if r.fits else ""))
    parts = pd.DataFrame({"component": ["weights", "KV cache", "activations", "overhead"],
                          "bytes": [m.weights_bytes_per_gpu, m.kv_cache_bytes_per_gpu,
                                    m.activation_bytes_per_gpu, m.overhead_bytes_per_gpu]})
    st.plotly_chart(figures.memory_bar(parts, m.capacity_bytes_per_gpu, m.gpu_memory_bytes))
    w = r.work
    st.caption(t("Prefill is {p}-bound, decode {d}-bound; prefill takes {share:.1%} of the GPU time; efficiencies: "
                 "{eff}.").format(p=t(w.prefill_bound), d=t(w.decode_bound), share=w.prefill_share_of_gpu_time,
                                  eff=t(r.provenance["efficiencies"])))
    with st.expander(t("Explain: every number's formula with this plan's values"), expanded=False):
        explain(sel, r, ins)
    if r.fits:
        with st.expander(t("Run it: the engine command for this plan, and the benchmark that checks it"), expanded=False):
            commands_panel.render(sel)
    st.subheader(t("All numbers"))
    table = metrics_table(r)
    tables.show(table, "plan", "plan", download=download_row(r), height=35 * (len(table) + 1) + 3)
    if ins["assumptions"]:
        with st.expander(t("Assumptions the config parser made")):
            st.markdown("\n".join(f"- {fmt.plain(a)}" for a in ins["assumptions"]))


page.run(body, t("Plan one deployment"),
         t("Does this model fit on this GPU at this batch and length, and how fast and how cheap will it be?"))
