"""Page 6: validation. Predicted against measured (profiles/measurements and the published reference
data), the y = x line, error per metric and GPU, calibrated against datasheet efficiencies."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import core, figures, page, tables, urlstate
from dashboard.i18n import t
from dashboard.state import Selection

MAX_POINTS = 4000  # per chart: enough to see the cloud, few enough to draw fast


def unit_of(metric: str) -> tuple[float, str]:
    if metric.endswith("_s"):
        return 1e-3, "(ms)"
    if metric.endswith("_bytes"):
        return 2**30, "(GiB)"
    return 1.0, ""


def _scored_section(title: str, summary, name: str, key: str, caption: str, rows_label: str, rows, rows_name: str,
                    rows_key: str) -> None:
    """A set of published figures no fit has seen: its summary, what it is, and every scored row in an expander."""
    st.subheader(title)
    tables.show(summary.round(2), name, key)
    st.caption(caption)
    with st.expander(rows_label):
        tables.show(rows.round(2), rows_name, rows_key)


def body(sel: Selection) -> None:
    df = core.validation()
    if df.empty:
        st.info(t("No measurements found under profiles/measurements and no reference data: nothing to compare yet."))
        return
    from planner import validate

    metrics = sorted(df["metric"].dropna().unique())
    c1, c2, c3 = st.columns([2, 2, 2])
    default = "tpot_s" if "tpot_s" in metrics else metrics[0]
    F = urlstate.Field
    all_gpus = tuple(sorted(df["gpu"].dropna().unique()))
    fields = (F("v_metric", "one", tuple(metrics)), F("v_pred", "one", ("calibrated", "datasheet")),
              F("v_gpus", "many", all_gpus))
    urlstate.seed(fields, {"v_metric": default, "v_pred": "calibrated", "v_gpus": list(all_gpus)})
    metric = c1.selectbox(t("Metric"), metrics, key="v_metric")
    pred = c2.radio(t("Prediction"), ["calibrated", "datasheet"], horizontal=True, key="v_pred", format_func=t,
                    help=t("calibrated: efficiencies fitted to the measurements (profiles/calibration.json); "
                         "datasheet: the default efficiencies against datasheet peaks"))
    gpus = sorted(df.loc[df["metric"] == metric, "gpu"].dropna().unique())
    st.session_state["v_gpus"] = [g for g in st.session_state["v_gpus"] if g in gpus] or gpus
    chosen = c3.multiselect(t("GPUs", "list"), gpus, key="v_gpus")
    urlstate.write(fields)
    d = df[(df["metric"] == metric) & df["gpu"].isin(chosen)]
    if len(d) > MAX_POINTS:
        d = d.sample(MAX_POINTS, random_state=0)
    col = "predicted" if pred == "calibrated" else "predicted_datasheet"
    scale, unit = unit_of(metric)
    st.plotly_chart(figures.validation_scatter(d, predicted=col, color="gpu", unit_scale=scale, unit=unit))
    n_all = int(((df["metric"] == metric) & df["gpu"].isin(chosen)).sum())
    st.caption(t("{n:,} measured points for {metric}").format(n=n_all, metric=metric)
               + (t(" ({n:,} drawn at random)").format(n=len(d)) if n_all > len(d) else "")
               + t(". On the dashed line the prediction is exact; below it the planner is optimistic (predicts less "
                   "time or memory than measured), above it pessimistic. Sources: ")
               + ", ".join(sorted(d["source"].unique())) + ".")
    e2e = df[df["source"].str.startswith("aic-silicon")]
    if len(e2e):
        st.subheader(t("End-to-end latency: held out and in-sample"))
        summ = validate.summary(e2e, by=("source", "metric", "gpu")).round(2)
        tables.show(summ[["source", "metric", "gpu", "n", "median_abs_error_pct", "p90_abs_error_pct",
                       "median_signed_error_pct"]], "validation_e2e", "ve2e")
        st.caption(t("Published serving runs (AIC silicon rows: vLLM, SGLang, TensorRT-LLM on H100/H200), each "
                   "predicted by simulating the benchmark as it ran. heldout: the engine's fixed costs fitted on "
                   "every other model (the honest score); insample: fitted on all runs; lowerbound: one prompt "
                   "alone, no queueing; screened: runs whose prompts need more GPU time than the run lasted (served "
                   "from a cache, not computed), predicted held out but neither fitted on nor counted in the other "
                   "rows. Reproduce: python benchmarks/bench_e2e.py --write."))
        bands = core.latency_bands()
        if len(bands):
            tables.show(bands.round(3), "latency_bands", "vbands")
            st.caption(t("The band every plan states for its engine: where the measured mean landed relative to the "
                       "prediction, a percentile range over held-out runs (5th-95th, widened up to 2.5th-97.5th "
                       "until a model left out falls inside 90 % of the time); coverage counts each model's runs "
                       "against the band built, level included, from the other models alone."))
    # published figures no fit has seen: (rows, summary), title, table names and keys, caption ({n}: rows, {s}: sources)
    for (rows, summary), title, name, key, caption, rows_label, rows_name, rows_key in (
        (core.external_runs(), t("Runs no fit has seen"), "validation_external", "vext", t(
            "{n:,} published runs of vLLM, SGLang and TensorRT-LLM from {s} other sources (engine pull "
            "requests, vendor and cloud benchmark pages, open benchmark repositories), each predicted as the "
            "plan page would answer its model, GPU, engine, release, TP, precision, flags and traffic; "
            "median and p90 |error| %, the signed median and the share inside the band the plan prints. "
            "Sources and what was left out: profiles/validation/external-serving.md. Reproduce: python "
            "benchmarks/bench_external.py --write."), t("Every scored run"), "validation_external_runs", "vextruns"),
        (core.throughput_runs(), t("Offline throughput: TensorRT-LLM's published trtllm-bench tables"),
         "validation_throughput", "vthr", t(
            "{n} cells of NVIDIA's TensorRT-LLM perf-overview page (output tokens a second per GPU, every "
            "request queued at once, fixed lengths), each simulated with the batch limits trtllm-bench picks "
            "itself; median and p90 |error| % and the signed median. No fit has seen them. Cells and what was "
            "left out: profiles/validation/trtllm-perf-overview.md. Reproduce: python "
            "benchmarks/bench_throughput.py --write."), t("Every scored cell"), "validation_throughput_cells",
         "vthrcells"),
        (core.trtllm_pool_runs(), t("TensorRT-LLM's KV pool against published start-up logs"),
         "validation_trtllm_pool", "vtrtpool", t(
            "{n} published TensorRT-LLM start-up logs (the pool it printed: 'available KV cache memory when "
            "calculating max tokens'), each predicted by capacity --engine trtllm with the run's model, GPU, TP, "
            "weights, KV dtype and fraction; |error| % of the pool, and of the pool recomputed with the weights "
            "the log printed (the start-up rule apart from the weight estimate). The memory outside torch was "
            "read off nine of them (in-sample); clean: no expert parallelism beyond TP, no piecewise CUDA graphs. "
            "Sources: profiles/validation/trtllm-startup.md. Reproduce: python "
            "benchmarks/bench_trtllm_pool.py."), t("Every scored log"), "validation_trtllm_pool_runs", "vtrtpoolruns"),
    ):
        if len(summary):
            counts = {"n": rows["id"].nunique(),
                      "s": rows["source_url"].str.replace(r"/blob/.*", "", regex=True).nunique()}
            _scored_section(title, summary, name, key, caption.format(**counts), rows_label, rows, rows_name, rows_key)
    st.subheader(t("Error per metric and GPU"))
    s = validate.summary(df, by=("source", "metric", "gpu"))
    s = s.round(2)
    tables.show(s, "validation_summary", "vsum")
    st.caption(t("Errors are signed: (predicted - measured) / measured. `median_abs_error_pct` uses the calibrated "
               "prediction where a calibration exists; the `datasheet_*` columns use the datasheet efficiencies, so "
               "the pair shows what calibration buys."))
    long = s.melt(id_vars=["source", "metric", "gpu"], value_vars=["median_abs_error_pct", "datasheet_median_abs_error_pct"],
                  var_name="prediction", value_name="median |error| %")
    long["prediction"] = long["prediction"].map({"median_abs_error_pct": t("calibrated"),
                                                 "datasheet_median_abs_error_pct": t("datasheet")})
    long["x"] = long["metric"] + " · " + long["gpu"] + " · " + long["source"]
    long = long[np.isfinite(long["median |error| %"].astype(float))].sort_values(["metric", "gpu", "source"],
                                                                                 kind="stable")
    if len(long):
        st.plotly_chart(figures.hbars(long, "x", "median |error| %", "Median |error| per metric, GPU and source: "
                                      "calibrated vs datasheet", "median |error| %", color="prediction", barmode="group"))
    worst = d.assign(abs_err=d["error_pct"].abs()).nlargest(20, "abs_err")[
        ["source", "gpu", "model", "batch", "prompt", "output", "op", "shape", "measured", "predicted",
         "predicted_datasheet", "error_pct", "provenance"]]
    with st.expander(t("The 20 worst {metric} points shown").format(metric=metric)):
        tables.show(pd.DataFrame(worst).round(6), f"validation_worst_{metric}", "vworst")


page.run(body, t("Validation"), t("How far the planner's predictions are from measurements, per metric and GPU."))
