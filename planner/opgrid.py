"""A measured latency table on a log grid: interpolation inside, roofline-scaled extrapolation outside.

The rows of a table (one measured call each) are placed on the dense product of the sorted values
every axis takes. Three rules turn the scattered measurements into a function of every axis:

1. **Monotone in work.** Along each *size* axis (tokens, batch, context) a point takes the minimum
   of itself and every larger measured point on the same shape: a smaller problem could always be
   padded up to the larger one (vLLM pads decode batches to its CUDA-graph sizes), so it is never
   slower. It removes timing noise (which only ever adds time) and kernel-heuristic dips (AIC's
   GEMM rows alternate between m and m+1 by up to 30 %) without raising a measurement.
2. **Fill by efficiency.** A cell of the dense grid with no measurement (ragged sweeps stop at
   large batch x context; not every heads / kv-heads pair was run) takes the efficiency
   ``measured / roofline`` of the nearest measured cell along one axis at a time (size axes first),
   times its own roofline. Beyond the edge of a sweep that is the roofline at the efficiency
   measured at the edge. A cell filled from another line can undercut a smaller one, so the
   filled grid then takes a running maximum along the size axes (in the carried tables this
   touches 31 measured cells, in holes of otherwise complete sweeps).
3. **Interpolate** ``log(latency)`` multilinearly in ``log(axis)``: piecewise-linear in log-log
   along every axis, so a grid point returns its table value exactly and a midpoint lies between
   its neighbours. A query outside an axis range is evaluated at the clamped point and scaled by
   ``roofline(query) / roofline(clamped)``, never below ``roofline(query)`` (the datasheet bound).

A query is *inside* when every axis lies in its measured range and every grid corner that carries
weight was measured (not filled). Pure numpy; the tables are built by planner/optables.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Roofline = Callable[[Mapping[str, np.ndarray]], np.ndarray]  # axis name -> values  ==>  seconds


@dataclass(frozen=True, eq=False)
class LogGrid:
    """One table: ``axes`` (interpolated in log), the dense log-seconds and which cells were measured."""

    axes: tuple[str, ...]
    size_axes: tuple[str, ...]
    values: tuple[np.ndarray, ...]       # the sorted distinct values of each axis
    log_values: tuple[np.ndarray, ...]   # their logs
    log_s: np.ndarray                    # dense log(seconds), after rules 1 and 2
    measured: np.ndarray                 # bool, same shape
    roofline: Roofline

    @classmethod
    def build(cls, columns: Mapping[str, np.ndarray], seconds: np.ndarray, axes: tuple[str, ...],
              size_axes: tuple[str, ...], roofline: Roofline) -> LogGrid:
        """``columns[axis]``: one value per measured row (all > 0); ``seconds``: its latency."""
        values = [np.unique(np.asarray(columns[a], dtype=float)) for a in axes]
        index = tuple(np.searchsorted(v, np.asarray(columns[a], dtype=float)) for a, v in zip(axes, values, strict=True))
        log_t = np.full(tuple(len(v) for v in values), np.nan)
        log_t[index] = np.log(np.asarray(seconds, dtype=float))
        measured = ~np.isnan(log_t)
        for a in size_axes:
            log_t = _suffix_min(log_t, axes.index(a), measured)
        mesh = dict(zip(axes, np.meshgrid(*values, indexing="ij"), strict=True))
        log_r = np.log(roofline(mesh))
        log_eff = _fill(log_t - log_r, [np.log(v) for v in values],
                        [axes.index(a) for a in size_axes] + [i for i, a in enumerate(axes) if a not in size_axes])
        log_t = log_eff + log_r
        for a in size_axes:  # filled cells borrow another line's efficiency: keep the grid monotone
            log_t = np.maximum.accumulate(log_t, axis=axes.index(a))
        return cls(axes, size_axes, tuple(values), tuple(np.log(v) for v in values), log_t, measured, roofline)

    def __call__(self, **query) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seconds, the inside flag and the roofline at ``query`` (one array per axis, broadcast)."""
        q = dict(zip(self.axes, np.broadcast_arrays(*(np.asarray(query[a], dtype=float) for a in self.axes)),
                     strict=True))
        clamped, lows, weights = {}, [], []
        inside = np.ones(np.shape(q[self.axes[0]]), dtype=bool)
        for a, v, lv in zip(self.axes, self.values, self.log_values, strict=True):
            x = np.clip(q[a], v[0], v[-1])
            inside &= (q[a] >= v[0]) & (q[a] <= v[-1])
            lo, w = _bracket(lv, np.log(x))
            clamped[a], lows, weights = x, [*lows, lo], [*weights, w]
        log_s = np.zeros_like(inside, dtype=float)
        for corner in itertools.product((0, 1), repeat=len(self.axes)):
            idx = tuple(np.minimum(lo + c, len(lv) - 1) for lo, c, lv in zip(lows, corner, self.log_values, strict=True))
            w = np.prod([wi if c else 1 - wi for wi, c in zip(weights, corner, strict=True)], axis=0)
            log_s = log_s + w * self.log_s[idx]
            inside &= self.measured[idx] | (w == 0)
        bound = self.roofline(q)
        seconds = np.exp(log_s) * bound / self.roofline(clamped)
        return np.where(inside, seconds, np.maximum(seconds, bound)), inside, np.asarray(bound)


def _bracket(lv: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower grid index and linear weight of ``x`` (already clamped into ``lv``'s range)."""
    if len(lv) == 1:
        return np.zeros(x.shape, dtype=int), np.zeros(x.shape)
    lo = np.clip(np.searchsorted(lv, x, side="right") - 1, 0, len(lv) - 2)
    w = (x - lv[lo]) / (lv[lo + 1] - lv[lo])
    return lo, np.clip(w, 0.0, 1.0)


def _suffix_min(log_t: np.ndarray, axis: int, measured: np.ndarray) -> np.ndarray:
    """Rule 1: each measured cell = min(itself, every measured cell further along ``axis``)."""
    rev = np.flip(np.where(measured, log_t, np.inf), axis)
    return np.where(measured, np.flip(np.minimum.accumulate(rev, axis=axis), axis), np.nan)


def _fill(arr: np.ndarray, log_axes: list[np.ndarray], order: list[int]) -> np.ndarray:
    """Rule 2: copy each NaN cell from the nearest (in log distance) non-NaN cell along one axis at a
    time, in ``order``, repeating until every cell holds a value."""
    arr = arr.copy()
    while np.isnan(arr).any():
        before = np.isnan(arr).sum()
        for ax in order:
            arr = _fill_axis(arr, ax, log_axes[ax])
        if np.isnan(arr).sum() == before:
            raise ValueError("a measured table with no value at all")
    return arr


def _fill_axis(arr: np.ndarray, ax: int, lv: np.ndarray) -> np.ndarray:
    n = arr.shape[ax]
    shape = [1] * arr.ndim
    shape[ax] = n
    pos = np.arange(n).reshape(shape)
    valid = ~np.isnan(arr)
    prev = np.maximum.accumulate(np.where(valid, pos, -1), axis=ax)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(valid, pos, n), ax), axis=ax), ax)
    here = lv.reshape(shape)
    d_prev = np.where(prev >= 0, here - lv[np.clip(prev, 0, n - 1)], np.inf)
    d_next = np.where(nxt < n, lv[np.clip(nxt, 0, n - 1)] - here, np.inf)
    src = np.where(d_prev <= d_next, prev, nxt)
    filled = np.take_along_axis(arr, np.clip(src, 0, n - 1), axis=ax)
    has = np.isfinite(np.minimum(d_prev, d_next))
    return np.where(valid, arr, np.where(has, filled, np.nan))
