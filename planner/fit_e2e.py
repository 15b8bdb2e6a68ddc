"""Fit an engine's fixed costs on end-to-end runs, and score them on models left out.

Three costs the measured operator tables cannot see (planner/scheduler.py):

* ``request_overhead_s``: per request, on the client's clock (HTTP, tokenization, detokenization);
* ``eager_layer_overhead_s``: per layer, for a forward pass larger than the largest captured CUDA
  graph (its kernels are launched one by one from Python);
* ``step_overhead_s``: per forward pass (scheduling, sampling, input preparation).

Each run's mean TTFT and TPOT depend on them almost linearly, so the simulation is run at the
current values and once more with each raised by a step (finite differences); the costs are then
the least-squares fit of the log errors of TTFT and TPOT, clipped at zero. ``leave_one_model_out``
fits on every model but one and predicts the one left out: the figures docs/validation.md reports
as held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import validate_e2e as v

PARAMS = ("request_overhead_s", "eager_layer_overhead_s", "step_overhead_s")
STEPS = {"request_overhead_s": 0.05, "eager_layer_overhead_s": 0.5e-3, "step_overhead_s": 2e-3}


@dataclass(frozen=True)
class Sensitivity:
    base: pd.DataFrame                     # one row per run: measured and predicted (base costs)
    slopes: dict[str, pd.DataFrame]        # d prediction / d cost, per cost
    start: dict[str, float]


def sensitivity(d: pd.DataFrame, engine: str, start: dict[str, float] | None = None) -> Sensitivity:
    start = dict(start or {k: 0.0 for k in PARAMS})
    base = v.predict(d, overheads={engine: start})
    slopes = {}
    for k in PARAMS:
        bumped = dict(start)
        bumped[k] += STEPS[k]
        p = v.predict(d, overheads={engine: bumped}).set_index("id")
        b = base.set_index("id")
        slopes[k] = pd.DataFrame({m: (p[f"{m}_s"] - b[f"{m}_s"]) / STEPS[k] for m in ("ttft", "tpot")})
    return Sensitivity(base, slopes, start)


def predict_with(s: Sensitivity, costs: dict[str, float]) -> pd.DataFrame:
    out = s.base.set_index("id").copy()
    for m in ("ttft", "tpot"):
        out[f"{m}_s"] = out[f"{m}_s"] + sum((costs[k] - s.start[k]) * s.slopes[k][m] for k in PARAMS)
    return out.reset_index()


def fit(s: Sensitivity, ids: pd.Index | None = None) -> dict[str, float]:
    """Least squares on relative errors of TTFT and TPOT (each run weighs the same), costs >= 0."""
    b = s.base.set_index("id")
    sel = b.index if ids is None else ids
    rows_a, rows_y = [], []
    for m in ("ttft", "tpot"):
        meas = b.loc[sel, f"silicon_{m}_ms"] / 1e3
        ok = np.isfinite(b.loc[sel, f"{m}_s"]) & (meas > 0)
        idx = sel[ok.to_numpy()]
        meas = meas[ok]
        rows_a.append(np.column_stack([s.slopes[k].loc[idx, m] / meas for k in PARAMS]))
        rows_y.append(((meas - b.loc[idx, f"{m}_s"]) / meas).to_numpy()
                      + sum(s.start[k] * s.slopes[k].loc[idx, m].to_numpy() / meas.to_numpy() for k in PARAMS))
    a, y = np.vstack(rows_a), np.concatenate(rows_y)
    good = np.all(np.isfinite(a), axis=1) & np.isfinite(y)
    x = _nnls(a[good], y[good])
    return dict(zip(PARAMS, (float(val) for val in x), strict=True))


def _nnls(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares by active set (three unknowns: try every subset)."""
    best, err = np.zeros(a.shape[1]), float(np.sum(y**2))
    n = a.shape[1]
    for mask in range(1, 2**n):
        cols = [i for i in range(n) if mask >> i & 1]
        sol, *_ = np.linalg.lstsq(a[:, cols], y, rcond=None)
        if np.all(sol >= 0):
            x = np.zeros(n)
            x[cols] = sol
            e = float(np.sum((a @ x - y) ** 2))
            if e < err:
                best, err = x, e
    return best


def leave_one_model_out(s: Sensitivity) -> pd.DataFrame:
    """Every run predicted with the costs fitted on the other models' runs."""
    b = s.base.set_index("id")
    parts = []
    for model in sorted(b["model"].unique()):
        train = b.index[b["model"] != model]
        costs = fit(s, train)
        pred = predict_with(s, costs).set_index("id").loc[b.index[b["model"] == model]]
        parts.append(pred.assign(**{f"fitted_{k}": val for k, val in costs.items()}).reset_index())
    return pd.concat(parts, ignore_index=True) if parts else b.reset_index()
