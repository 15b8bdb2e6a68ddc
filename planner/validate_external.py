"""Published serving runs that no fit has seen: the planner as a user would run it, scored.

The end-to-end fit (planner/fit_e2e.py) and its held-out figures use the AIC silicon rows alone. The
runs here come from elsewhere (engine issues and pull requests, vendor and cloud benchmark pages,
open benchmark repositories; every row names its page in ``source_url``) and are never fitted on:
each is predicted with the planner's own defaults for what the run does not state, exactly as
``plan`` would answer a user who typed the run's model, GPU, engine, release, TP, precision and
traffic. profiles/validation/external-serving.csv holds them (published figures, quoted with their
addresses); ``predict`` joins every row with its prediction, ``summary`` gives median / p90 |error|
and the share of runs inside the band the plan prints (profiles/engines/<engine>.json
``latency_bands``), per engine.

A run's client decides its traffic (``traffic``):
* ``--max-concurrency C`` (rate inf): a closed loop of C clients sending ``num_prompts`` requests;
* rate inf and no concurrency: every request sent at once, one round (``vllm bench serve``'s default,
  ``sglang.bench_serving``'s too): the TTFT is mostly the queue's;
* a finite rate without a concurrency cap: Poisson arrivals (burstiness 1), every request measured;
  a finite rate under a concurrency cap is not simulated (the row is kept, unpredicted);
* lengths: the run's mean prompt and output from its totals where printed (total tokens / requests),
  else the stated lengths; ``dataset`` random: fixed (the clients' default range ratio), or uniform
  on [low, high] where the row gives them; sharegpt: exponential at the run's means (ShareGPT's
  lengths are long-tailed; the dataset is not carried here, so its shape is approximated).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import api, profiles
from .errors import PlannerInputError
from .memory import Deployment
from .simulate import draw_lengths
from .traffic import serve_lengths

CSV = "external-serving.csv"
METRICS = ("ttft", "tpot", "e2e")


def path():
    return profiles.ROOT / "validation" / CSV


def predicted_path():
    """Where benchmarks/bench_external.py --write keeps the scored runs (``scored``) the dashboard shows."""
    return profiles.ROOT / "validation" / "external-serving-predicted.csv"


def rows(file=None) -> pd.DataFrame:
    """The external runs (profiles/validation/external-serving.md says where each source's figures come from)."""
    p = file or path()
    if not p.is_file():
        return pd.DataFrame()
    d = pd.read_csv(p, dtype={"engine_version": str, "kv_dtype": str, "weights": str})
    return d.reset_index(drop=True)


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(v) -> bool | None:
    if isinstance(v, str) and v.strip().lower() in ("on", "true", "yes", "1"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("off", "false", "no", "0"):
        return False
    return None


def deployment(r) -> Deployment:
    """The row's deployment: what it states, the planner's defaults (the engine table's, for the row's
    release) for the rest."""
    opt = {}
    for key in ("max_num_seqs", "max_num_batched_tokens"):
        v = _num(getattr(r, key, None))
        if v:
            opt[key] = int(v)
    v = _num(getattr(r, "gpu_memory_utilization", None))
    if v:
        opt["gpu_memory_utilization"] = v
    if _flag(getattr(r, "eager", None)):
        opt["cuda_graph_sizes"] = ()
    a = _flag(getattr(r, "async_scheduling", None))
    if a is not None and r.engine == "vllm":
        opt["async_scheduling"] = a
    version = r.engine_version if isinstance(r.engine_version, str) and r.engine_version else None
    # a run that names no KV dtype ran the engine's own: "auto" (the checkpoint's KV scheme where the release reads it)
    kv = r.kv_dtype if isinstance(r.kv_dtype, str) and r.kv_dtype not in ("", "auto") else None
    spec = profiles.load_model(r.model)
    weights = r.weights if isinstance(r.weights, str) and r.weights else api.default_weights(spec)
    return Deployment(weights=weights, kv_dtype=kv or "auto", engine="paged", tp=int(r.tp), server=r.engine,
                      server_version=version, **opt)


def traffic(r, seed: int = 0) -> dict | None:
    """The run's requests: prompts, outputs and (concurrency or rate); None where not simulated."""
    n = int(r.num_prompts)
    rng = np.random.default_rng(seed)
    mean_in = _num(r.mean_input_tokens) or _num(r.input_len)
    mean_out = _num(r.mean_output_tokens) or _num(r.output_len)
    if not mean_in or not mean_out:
        return None
    if r.dataset == "sharegpt":
        prompts = draw_lengths(round(mean_in), "exponential", n, rng)
        outputs = draw_lengths(round(mean_out), "exponential", n, rng)
    else:
        lo_in, hi_in, lo_out, hi_out = (_num(getattr(r, k, None)) for k in ("input_low", "input_high",
                                                                            "output_low", "output_high"))
        prompts = (rng.integers(int(lo_in), int(hi_in) + 1, size=n) if lo_in and hi_in
                   else np.full(n, round(mean_in))).astype(np.int64)
        outputs = (rng.integers(int(lo_out), int(hi_out) + 1, size=n) if lo_out and hi_out
                   else np.full(n, round(mean_out))).astype(np.int64)
    c = _num(r.max_concurrency)
    rate = _num(r.request_rate) if str(r.request_rate).strip().lower() != "inf" else None
    if rate and c:
        return None  # Poisson arrivals under a concurrency cap: not simulated
    if rate:
        return {"prompts": prompts, "outputs": outputs, "rate": rate, "concurrency": None}
    return {"prompts": prompts, "outputs": outputs, "rate": None, "concurrency": int(c) if c else n}


def predict(d: pd.DataFrame) -> pd.DataFrame:
    """Every row with its predicted mean / median TTFT, TPOT and e2e (seconds), and ``why`` where it
    could not be predicted."""
    out = []
    for r in d.itertuples():
        rec = {"id": r.id, "why": ""}
        try:
            t = traffic(r)
            if t is None:
                raise PlannerInputError("traffic", "a Poisson rate under a concurrency cap is not simulated", "")
            p = api.build_plan(r.model, r.gpu, deployment(r))
            s = serve_lengths(p, t["prompts"], t["outputs"], concurrency=t["concurrency"], rate_per_s=t["rate"],
                              measure="all", max_queue=10 ** 6)
        except PlannerInputError as e:
            rec["why"] = str(e)
            out.append(rec)
            continue
        for m in METRICS:
            arr = getattr(s, f"{m}_s")
            rec[f"{m}_mean_s"] = float(np.mean(arr)) if arr.size else np.nan
            rec[f"{m}_median_s"] = float(np.median(arr)) if arr.size else np.nan
        # vLLM's ITL: every gap between two tokens, over all requests (token-weighted TPOT)
        gaps = np.maximum(t["outputs"] - 1, 0) if s.tpot_s.size == t["outputs"].size else np.ones(s.tpot_s.size)
        rec["itl_mean_s"] = float(np.sum(s.tpot_s * gaps) / gaps.sum()) if gaps.sum() else np.nan
        # requests decoding at once, time-averaged (Little's law: decode seconds of every request / the run's length)
        rec["decoding_in_flight"] = float(np.sum(s.tpot_s * gaps) / s.duration_s) if s.duration_s else np.nan
        rec["server_version"] = p.scheduler.version if p.scheduler is not None else ""
        rec["tables"] = p.timing.ops is not None  # measured operator tables, or the calibrated roofline
        out.append(rec)
    return d.merge(pd.DataFrame(out), on="id", how="left")


# measured column -> predicted column; the first present in a row is the one it is scored on
PAIRS = {"ttft": (("ttft_mean_ms", "ttft_mean_s"), ("ttft_median_ms", "ttft_median_s")),
         "tpot": (("tpot_mean_ms", "tpot_mean_s"), ("tpot_median_ms", "tpot_median_s"),
                  ("itl_mean_ms", "itl_mean_s"))}


def in_flight(pred: pd.DataFrame) -> pd.DataFrame:
    """Requests decoding at once, time-averaged, as the run printed it and as simulated, for runs sent all at once
    whose page printed the output throughput. Little's law on the printed figures: every request decodes for
    mean TPOT x (mean output - 1) on average, and the run lasts total output tokens / output tokens a second, so
    the mean number decoding is requests x mean TPOT x (mean output - 1) / that length (the mean of TPOT times
    the mean of the output stands for the mean of their product: exact when the two are independent). The
    simulation's is the same sum over its own requests (``predict``: ``decoding_in_flight``). A run whose engine
    held more requests at once than the simulation shows it here, whatever the per-request latencies."""
    d = pred[pred["max_concurrency"].isna() & (pred["request_rate"].astype(str).str.lower() == "inf")].copy()
    out_tok = d["mean_output_tokens"].fillna(d["output_len"])
    duration = d["num_prompts"] * out_tok / d["output_tok_s"]
    d["measured_in_flight"] = d["num_prompts"] * d["tpot_mean_ms"] / 1e3 * (out_tok - 1) / duration
    d = d.dropna(subset=["measured_in_flight", "decoding_in_flight"])
    d["ratio"] = d["measured_in_flight"] / d["decoding_in_flight"]
    return d[["id", "engine", "model", "gpu", "dataset", "num_prompts", "measured_in_flight", "decoding_in_flight",
              "ratio"]].reset_index(drop=True)


def errors(pred: pd.DataFrame) -> pd.DataFrame:
    """Per row and metric: measured and predicted (ms), error % and whether the measurement lies in the
    band the plan prints (profiles/engines/<engine>.json ``latency_bands``)."""
    recs = []
    for r in pred.itertuples():
        bands = profiles.latency_bands(r.engine)
        for metric, pairs in PAIRS.items():
            for mcol, pcol in pairs:
                meas, guess = _num(getattr(r, mcol, None)), _num(getattr(r, pcol, None))
                if meas is None:
                    continue
                rec = {"id": r.id, "engine": r.engine, "metric": metric, "statistic": mcol.split("_")[1],
                       "measured_ms": meas, "predicted_ms": guess * 1e3 if guess is not None else np.nan}
                if guess:
                    rec["error_pct"] = (guess * 1e3 - meas) / meas * 100
                    b = bands.get(metric)
                    rec["in_band"] = bool(b and b["low_ratio"] * guess * 1e3 <= meas <= b["high_ratio"] * guess * 1e3)
                recs.append(rec)
                break
    return pd.DataFrame(recs)


def scored(pred: pd.DataFrame, err: pd.DataFrame) -> pd.DataFrame:
    """One row per run and metric scored (``errors``), with the run's deployment, its load (a closed loop of
    clients, every request at once, Poisson arrivals) and its timing source (the measured operator tables, or
    the calibrated roofline where they do not cover the plan); what the dashboard and the benchmark show."""
    if err.empty:
        return pd.DataFrame()
    meta = pred[["id", "model", "gpu", "tp", "engine_version", "max_concurrency", "num_prompts", "request_rate",
                 "dataset", "input_len", "output_len", "source_url", "tables"]].copy()
    meta["load"] = np.where(meta["max_concurrency"].notna(), "closed loop",
                            np.where(meta["request_rate"].astype(str).str.lower() == "inf", "all at once", "Poisson"))
    meta["timing"] = np.where(meta["tables"].fillna(False).astype(bool), "measured tables", "roofline")
    return err.dropna(subset=["error_pct"]).merge(meta.drop(columns=["tables"]), on="id")


def summary(long: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 |error|, the signed median and the share inside the printed band, per engine and metric:
    over all runs, by load and by timing source (``scored``'s rows)."""
    out = []
    if long.empty:
        return pd.DataFrame(out)
    for engine, g in long.groupby("engine"):
        for label, part in [("all", g), *((f"load: {k}", v) for k, v in g.groupby("load")),
                            *((f"timing: {k}", v) for k, v in g.groupby("timing"))]:
            rec = {"engine": engine, "group": label}
            for m in ("ttft", "tpot"):
                sel = part["metric"] == m
                e, inb = part.loc[sel, "error_pct"].astype(float), part.loc[sel, "in_band"]
                rec[f"{m}_n"] = int(e.size)
                rec[f"{m}_median"] = float(e.abs().median()) if e.size else np.nan
                rec[f"{m}_p90"] = float(e.abs().quantile(0.9)) if e.size else np.nan
                rec[f"{m}_signed"] = float(e.median()) if e.size else np.nan
                rec[f"{m}_in_band"] = float(inb.astype(bool).mean()) if inb.size else np.nan
            out.append(rec)
    return pd.DataFrame(out)
