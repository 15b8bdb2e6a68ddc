"""Every measurement joined with the planner's prediction for the same plan, and the error bands.

Sources (one row per measured point and metric):

* ``profiler``: our own CSVs under ``profiles/measurements/<gpu or cpu>/`` (``python -m planner
  profile``), predicted with the transformers engine: weights, KV bytes, peak allocated memory,
  prefill, median decode step and mean step (TPOT) of the same batch, prompt and context.
* the published reference data (planner/reference.py), predicted per kernel with the roofline
  (GEMM, generation and context attention);
* the end-to-end runs (AIC silicon TTFT and TPOT per serving engine), predicted by the simulation
  of the benchmark as it ran, held out and in-sample, from profiles/validation/e2e-<engine>.csv
  (``benchmarks/bench_e2e.py --write``, planner/validate_e2e.py and planner/fit_e2e.py).

``predicted`` uses the GPU's calibration when profiles/calibration.json has one, else the
datasheet efficiencies; ``predicted_datasheet`` always the datasheet ones. ``error_pct`` is
signed: (predicted - measured) / measured x 100, so a negative error means the planner is too
optimistic (predicts less time or memory than measured).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from . import api, profiles
from . import kv as kvmod
from . import reference as ref
from .errors import PlannerInputError
from .formats import weight_bytes
from .measurefile import read_table
from .memory import Deployment
from .params import params_total
from .spec import ModelSpec
from .timing import Efficiency
from .validate_e2e import screened

METRICS = ("weights_bytes", "kv_bytes", "peak_bytes", "ttft_s", "tpot_s", "decode_step_s", "prefill_s",
           "gemm_s", "attention_s")
COLUMNS = ["source", "gpu", "model", "engine", "dtype", "batch", "prompt", "output", "metric", "measured",
           "predicted", "predicted_datasheet", "error_pct", "error_datasheet_pct", "calibration", "op", "shape",
           "tp", "provenance"]
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
BAND_QUANTILE = 0.9  # an error band is the 90th percentile of |error| over the measured points

def datasheet_efficiency() -> Efficiency:
    return Efficiency.from_fit(profiles.efficiency_defaults(), None)  # the one rule, with no fit


def efficiency(cal: dict, gpu: str, engine: str) -> Efficiency:
    """The efficiencies ``cal`` ({gpu: {engine: fit}}) gives this GPU and engine, else the datasheet
    defaults: Efficiency.from_fit, the rule api.efficiency_for applies to the written calibration."""
    return Efficiency.from_fit(profiles.efficiency_defaults(), cal.get(gpu, {}).get(engine))


def kernel_latency(cal: dict, gpu: str, eff: Efficiency) -> dict[str, float]:
    """Fixed seconds per kernel call by family: the calibration's fit, else an equal share of
    the layer overhead (reference.KERNELS_PER_LAYER kernels per layer)."""
    share = eff.layer_overhead_s / ref.KERNELS_PER_LAYER
    fitted = (cal.get(gpu, {}).get("paged") or {}).get("kernel_latency_s") or {}
    return {op: float(fitted.get(op, share)) for op in ("gemm", "attention")}


def _frame(cols: dict) -> pd.DataFrame:
    n = max(len(np.atleast_1d(v)) for v in cols.values())
    return pd.DataFrame({k: (v if np.ndim(v) else np.full(n, v, dtype=object)) for k, v in cols.items()})


# ---- our own measurements ------------------------------------------------------------------------
def measurement_files(dirs: Iterable[str | Path] | None = None) -> list[Path]:
    """Every profiler CSV under ``dirs`` (folders searched recursively; files taken as given)."""
    dirs = profiles.measurement_dirs() if dirs is None else [Path(d) for d in dirs]
    out: list[Path] = []
    for d in dirs:
        out += [d] if d.is_file() else sorted(d.rglob("*.csv"))
    return out


# the columns a profiler row needs to be compared, numeric; and the text ones
NEEDED = ("batch", "prompt", "output", "warmup", "steps", "context_end", "decode_context_median")
TEXT_COLUMNS = ("status", "error", "finished_at", "device", "gpu", "gpu_name", "model", "model_type", "engine",
                "dtype", "attn", "attn_used")


def read_measurement_file(f: Path) -> pd.DataFrame:
    """One profiler CSV (measurefile.read_table: complete rows only, a damaged file refused) as a frame
    with numeric columns as numbers; a file without the profiler's columns is an empty frame."""
    t = read_table(f)
    if not {"status", "model", "batch"} <= set(t.header):
        return pd.DataFrame()
    df = pd.DataFrame(list(t.rows), columns=list(t.header), dtype=object)
    for c in df.columns:
        if c not in TEXT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df.assign(file=str(f), folder=str(f.parent))


def _usable(d: pd.DataFrame) -> pd.DataFrame:
    """Measured rows that can be compared: status ok, a known dtype, whole positive sizes."""
    if d.empty or not set(NEEDED) <= set(d.columns):
        return d.iloc[:0]
    ok = (d["status"] == "ok") & d["dtype"].isin(list(DTYPE_BYTES)) & (d["batch"] >= 1) & (d["prompt"] >= 1)
    ok &= d[list(NEEDED)].notna().all(axis=1) & np.isfinite(d[list(NEEDED)].to_numpy(float)).all(axis=1)
    return d[ok & ~d["model"].astype(str).str.contains(r"[/\\]|^\.", regex=True)]


def read_measurements(files: list[Path]) -> pd.DataFrame:
    frames = [f for f in (read_measurement_file(p) for p in files) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _spec(model: str, folder: str) -> ModelSpec:
    """The config the profiler copied beside its CSV, else the bundled model of that name."""
    p = Path(folder) / f"{model}.config.json"
    if p.is_file():
        return ModelSpec.from_hf_config(profiles.read_json(p, p.name), model)
    return profiles.load_model(model)


def _predicted_weights(spec: ModelSpec, dtype: str) -> float:
    try:
        return weight_bytes(spec, profiles.formats(), dtype)
    except PlannerInputError:  # no such format bundled (e.g. fp32)
        return float(params_total(spec) * DTYPE_BYTES[dtype])  # every tensor in the run's dtype


def _profiler_group(g: pd.DataFrame, cal: dict) -> list[pd.DataFrame]:
    """Tidy metric rows for one (model, gpu, dtype, folder) group of profiler rows."""
    first = g.iloc[0]
    spec = _spec(str(first["model"]), str(first["folder"]))
    dtype, gpu = str(first["dtype"]), str(first["gpu"])
    b, p = g["batch"].to_numpy(float), g["prompt"].to_numpy(float)
    ctx_end = g["context_end"].to_numpy(float)
    groups = kvmod.layer_groups(spec, dtype, "transformers", state_bytes=DTYPE_BYTES[dtype])
    pred = {"weights_bytes": np.full(len(g), _predicted_weights(spec, dtype)),
            "kv_bytes": kvmod.kv_cache_bytes(groups, b, ctx_end, "transformers")}
    meas = {"weights_bytes": g["param_bytes"], "kv_bytes": g["kv_bytes"], "peak_bytes": g["peak_allocated_bytes"],
            "prefill_s": g["prefill_s"], "decode_step_s": g["decode_step_median_s"], "tpot_s": g["decode_step_mean_s"]}
    ds = dict(pred)
    known = gpu in profiles.gpus()
    cal = "datasheet"
    if known:
        dep = Deployment(weights=dtype, kv_dtype=dtype, engine="transformers")
        eff = efficiency(cal, gpu, "transformers")
        cal = eff.provenance
        for out, e in ((pred, eff), (ds, datasheet_efficiency())):
            pl = api.build_plan(spec, gpu, dep, eff=e)
            mm, tm = pl.memory, pl.timing
            out["peak_bytes"] = mm.weights_bytes + mm.kv_bytes(b, ctx_end) + mm.activations(b, p)
            out["prefill_s"] = tm.prefill(b, p)["time_s"]
            out["decode_step_s"] = tm.decode_step(b, g["decode_context_median"].to_numpy(float))["time_s"]
            out["tpot_s"] = tm.tpot(b, p + g["warmup"].to_numpy(float), g["steps"].to_numpy(float) + 1)
    note = "" if known else f"; no GPU profile for {gpu!r}: timings measured only" + (
        " (CPU timings are indicative)" if gpu == "cpu" else "")
    rows = []
    for metric, m in meas.items():
        rows.append(_frame({
            "source": "profiler", "gpu": gpu, "model": spec.name, "engine": "transformers", "dtype": dtype,
            "batch": b, "prompt": p, "output": g["output"].to_numpy(float), "metric": metric,
            "measured": pd.to_numeric(m, errors="coerce").to_numpy(float),
            "predicted": np.asarray(pred.get(metric, np.nan), dtype=float) * np.ones(len(g)),
            "predicted_datasheet": np.asarray(ds.get(metric, np.nan), dtype=float) * np.ones(len(g)),
            "calibration": cal if metric.endswith("_s") else "exact count", "op": "model", "shape": "",
            "tp": 1.0, "provenance": "profiler " + g["file"].map(lambda f: Path(f).name).to_numpy(object) + note}))
    return rows


def profiler_rows(files: list[Path], cal: dict) -> pd.DataFrame:
    d = _usable(read_measurements(files))
    if d.empty:
        return pd.DataFrame()
    parts = [r for _, g in d.groupby(["model", "gpu", "dtype", "folder"], sort=True) for r in _profiler_group(g, cal)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out[out["measured"].notna()] if not out.empty else out


# ---- the published reference data ----------------------------------------------------------------
def kernel_rows(refdir: Path, cal: dict) -> pd.DataFrame:
    k = pd.concat([ref.aic_kernels(refdir).assign(source="aic-kernel"),
                   ref.vidur_linears(refdir).assign(source="vidur-op")], ignore_index=True)
    if k.empty:
        return k
    k = k[k["gpu"].isin(profiles.gpus())]
    parts = []
    for gpu, g in k.groupby("gpu"):
        spec = profiles.gpu(gpu)
        eff, ds_eff = efficiency(cal, gpu, "paged"), datasheet_efficiency()
        is_attn = g["op"].str.contains("attention").to_numpy()
        pred, ds = (ref.kernel_seconds(g["flops"], g["bytes"], spec, e)
                    - e.layer_overhead_s / ref.KERNELS_PER_LAYER
                    + np.where(is_attn, lat["attention"], lat["gemm"])
                    for e, lat in ((eff, kernel_latency(cal, gpu, eff)), (ds_eff, kernel_latency({}, gpu, ds_eff))))
        gen = (g["op"] == "generation_attention").to_numpy()
        shape = np.where(is_attn, "h" + g["heads"].astype("Int64").astype(str) + "/kv" + g["kv_heads"].astype("Int64").astype(str),
                         "m" + g["m"].astype("Int64").astype(str) + " n" + g["n"].round().astype("Int64").astype(str)
                         + " k" + g["k"].round().astype("Int64").astype(str))
        cite = np.where(g["source"] == "vidur-op", ref.VIDUR, ref.AIC)
        parts.append(_frame({
            "source": g["source"].to_numpy(object), "gpu": gpu, "model": "", "engine": "paged", "dtype": "bf16",
            "batch": np.where(is_attn, g.get("batch"), g.get("m")).astype(float),
            "prompt": np.where(is_attn, g.get("length"), np.nan).astype(float),
            "output": np.where(gen, 1.0, np.where(is_attn, 0.0, np.nan)),
            "metric": np.where(is_attn, "attention_s", "gemm_s"), "measured": g["measured"].to_numpy(float),
            "predicted": pred, "predicted_datasheet": ds, "calibration": eff.provenance,
            "op": g["op"].to_numpy(object), "shape": shape, "tp": g["tp"].fillna(1).to_numpy(float) if "tp" in g else 1.0,
            "provenance": cite + ", " + g["file"].to_numpy(object)}))
    return pd.concat(parts, ignore_index=True)


E2E_SOURCES = {"held_out": ("aic-silicon-heldout", "end-to-end, simulated; costs fitted without this model"),
               "in_sample": ("aic-silicon-insample", "end-to-end, simulated; costs fitted on every run"),
               "lower_bound": ("aic-silicon-lowerbound", "end-to-end, mean-value: one prompt alone"),
               "screened": ("aic-silicon-screened", "end-to-end, simulated held out; its prompts need more GPU time "
                            "than the run lasted, so they were not computed (validate_e2e.screen): not fitted on")}


def silicon_rows(simulate: bool = True) -> pd.DataFrame:
    """End-to-end TTFT/TPOT rows per serving engine (``aic-silicon-heldout[vllm]`` ...) from the
    committed benchmark output profiles/validation/e2e-<engine>.csv (``python
    benchmarks/bench_e2e.py --write``): the simulated prediction held out (leave one model out) and
    in-sample, and the single-request lower bound. A screened run (its prompts were not computed,
    ``validate_e2e.screen``) is shown once, apart, held out (``aic-silicon-screened``). ``simulate``
    False keeps only the lower bound."""
    parts = []
    for name, runs in profiles.e2e_runs():
        if runs.empty:
            continue
        out = screened(runs)
        kinds = ("held_out", "in_sample", "lower_bound", "screened") if simulate else ("lower_bound",)
        for kind in kinds:
            g = runs[out] if kind == "screened" else runs[~out]
            if g.empty:
                continue
            engine = "[" + g["engine"].astype(str).to_numpy(object) + "]"
            cite = (ref.AIC_SILICON + ", " + g["engine"].astype(str) + " " + g["version"].fillna("").astype(str)
                    + ", id " + g["id"].astype(str) + f"; {name}").to_numpy(object)
            source, op = E2E_SOURCES[kind]
            pred = "held_out" if kind == "screened" else kind  # a screened run shows its held-out prediction
            cols = {"ttft_s": "ttft_lower_bound_ms", "tpot_s": "tpot_mean_value_ms"} if kind == "lower_bound" else \
                {"ttft_s": f"ttft_{pred}_ms", "tpot_s": f"tpot_{pred}_ms"}
            for metric, col in cols.items():
                parts.append(_frame({
                    "source": source + engine, "gpu": g["gpu"].to_numpy(object), "model": g["model"].to_numpy(object),
                    "engine": "paged", "dtype": "", "batch": g["batch_size"].to_numpy(float),
                    "prompt": g["isl"].to_numpy(float), "output": g["osl"].to_numpy(float), "metric": metric,
                    "measured": g[f"silicon_{metric[:4]}_ms"].to_numpy(float) / 1e3,
                    "predicted": g[col].to_numpy(float) / 1e3, "predicted_datasheet": np.nan,
                    "calibration": "profiles/engines constants", "op": op, "shape": "",
                    "tp": g["tp_size"].to_numpy(float), "provenance": cite}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ---- the public interface (the dashboard's Validation page calls these three) ------------------
def validation_table(dirs=None, reference: str | Path | bool | None = None,
                     calibration: dict | None = None, simulate: bool = True) -> pd.DataFrame:
    """One row per measured point and metric, with the prediction and the signed error (%).

    ``dirs``: measurement folders or CSV files (default: every folder under profiles/measurements).
    ``reference``: the published reference-data folder (default: found by ``reference.find_reference``;
    False leaves it out). ``calibration``: {gpu: {engine: fit}} to predict with (default:
    profiles/calibration.json); GPUs and engines without a fit use the datasheet defaults.
    """
    cal = profiles.load_calibrations() if calibration is None else calibration
    parts = [profiler_rows(measurement_files(dirs), cal)]
    refdir = None if reference is False else ref.find_reference(None if reference in (None, True) else reference)
    if refdir is not None:
        parts.append(kernel_rows(refdir, cal))
    if reference is not False:
        parts.append(silicon_rows(simulate))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(parts, ignore_index=True).reindex(columns=COLUMNS)
    with np.errstate(divide="ignore", invalid="ignore"):
        df["error_pct"] = (df["predicted"] - df["measured"]) / df["measured"] * 100
        df["error_datasheet_pct"] = (df["predicted_datasheet"] - df["measured"]) / df["measured"] * 100
    return df


def summary(df: pd.DataFrame, by: tuple[str, ...] = ("metric", "gpu")) -> pd.DataFrame:
    """Per group: n, median and worst |error| %, median signed error % (calibrated or datasheet
    prediction as ``predicted``), the 90th percentile |error| and the datasheet's median errors."""
    d = df[np.isfinite(df["error_pct"].astype(float))].copy()
    cols = ["n", "median_abs_error_pct", "p90_abs_error_pct", "worst_abs_error_pct", "median_signed_error_pct",
            "datasheet_median_abs_error_pct", "datasheet_median_signed_error_pct"]
    if d.empty:
        return pd.DataFrame(columns=[*by, *cols])
    d["abs_err"] = d["error_pct"].abs()
    d["abs_ds"] = d["error_datasheet_pct"].abs()
    out = d.groupby(list(by), sort=True).agg(
        n=("error_pct", "size"), median_abs_error_pct=("abs_err", "median"),
        p90_abs_error_pct=("abs_err", lambda x: x.quantile(BAND_QUANTILE)), worst_abs_error_pct=("abs_err", "max"),
        median_signed_error_pct=("error_pct", "median"), datasheet_median_abs_error_pct=("abs_ds", "median"),
        datasheet_median_signed_error_pct=("error_datasheet_pct", "median"))
    return out.reset_index()


def bands(df: pd.DataFrame) -> dict[str, dict[str, dict]]:
    """{gpu: {metric: {pct, n, source}}}: the 90th percentile of |error| per GPU and metric.

    End-to-end rows are left out: a plan's TTFT / TPOT band is its engine's, measured on held-out
    published runs (profiles/engines/<engine>.json ``latency_bands``, planner/fit_e2e.py).
    """
    d = df[np.isfinite(df["error_pct"].astype(float)) & ~df["source"].str.startswith("aic-silicon")].copy()
    d["key"] = d["metric"]
    out: dict[str, dict[str, dict]] = {}
    for (gpu, key), g in d.groupby(["gpu", "key"]):
        pct = float(g["error_pct"].abs().quantile(BAND_QUANTILE))
        src = ", ".join(f"{name} ({n})" for name, n in g["source"].value_counts().sort_index().items())
        out.setdefault(gpu, {})[key] = {"pct": round(pct, 2), "n": int(len(g)), "source": f"p90 |error| over {src}"}
    return out


def error_band(gpu: str, metric: str, engine: str | None = None) -> dict | None:
    """{"pct", "n", "source"} for predictions of ``metric`` on ``gpu``, or None when no
    measurement backs that GPU. Read from profiles/calibration.json (written by ``calibrate``),
    else computed from our own measurements under profiles/measurements."""
    cal = profiles.load_calibrations().get(gpu, {})
    for eng in ([engine] if engine else ["paged", "transformers", *cal]):
        band = (cal.get(eng) or {}).get("error_bands", {}).get(metric)
        if band:
            return {"pct": float(band["pct"]), "n": int(band["n"]),
                    "source": band.get("source", f"profiles/calibration.json ({eng})")}
    df = validation_table(reference=False)
    return bands(df).get(gpu, {}).get(metric) if not df.empty else None
