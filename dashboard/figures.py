"""Plotly figure builders: a DataFrame in, a figure out. No streamlit here, so tests can call them.

Inputs are in SI units (bytes, seconds) as the core returns them; the builders convert to GiB and
ms for the axes, the only place those units appear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.i18n import t  # no Streamlit at import; English outside a Streamlit run

GIB = 2**30
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC",
           "#EECA3B")
MEMORY_COLORS = {"weights": "#4C78A8", "KV cache": "#F58518", "activations": "#54A24B", "overhead": "#BAB0AC"}


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 380) -> go.Figure:
    # titles come in English (pages pass them as written); the session's language is applied here
    fig.update_layout(title=t(title), xaxis_title=t(x), yaxis_title=t(y), height=height + 60, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0.0, title=None))
    return fig


def memory_bar(parts: pd.DataFrame, capacity_bytes: float, total_bytes: float | None = None) -> go.Figure:
    """Stacked bar of one GPU's memory (``parts``: component, bytes) against its usable capacity."""
    fig = go.Figure()
    for row in parts.itertuples(index=False):
        name = t(row.component)
        fig.add_bar(y=[t("per GPU")], x=[row.bytes / GIB], name=name, orientation="h",
                    marker_color=MEMORY_COLORS.get(row.component), text=f"{name} {row.bytes / GIB:.2f} GiB",
                    textposition="inside", insidetextanchor="middle",
                    hovertemplate=f"{name}: %{{x:.2f}} GiB<extra></extra>")
    fig.add_vline(x=capacity_bytes / GIB, line=dict(color="black", width=3),
                  annotation_text=t("usable {gib:.1f} GiB").format(gib=capacity_bytes / GIB), annotation_position="top left")
    if total_bytes and total_bytes > capacity_bytes * 1.001:
        fig.add_vline(x=total_bytes / GIB, line=dict(color="grey", dash="dot"),
                      annotation_text=t("physical {gib:.1f} GiB").format(gib=total_bytes / GIB), annotation_position="bottom right")
    used = float(parts["bytes"].sum())
    # the usable label reads leftwards from its line, the physical one rightwards from its own: neither crosses
    # the other's line, and the axis leaves the physical label room on the right
    fig.update_xaxes(range=[0, max(used, capacity_bytes, total_bytes or 0) / GIB * (1.25 if total_bytes else 1.08)])
    _layout(fig, "Memory per GPU", "GiB", "", height=250)
    fig.update_layout(barmode="stack", showlegend=True, uniformtext_minsize=10, uniformtext_mode="hide",
                      legend=dict(orientation="h", traceorder="normal", yanchor="top", y=-0.35, xanchor="left", x=0),
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def pareto(df: pd.DataFrame, frontier: pd.DataFrame, x: str = "tokens_per_s_per_user",
           y: str = "output_tokens_per_s_per_gpu", series: str = "series") -> go.Figure:
    """Latency (tokens/s each user sees) against throughput (tokens/s per GPU) over batch, per series,
    with the Pareto frontier over all series (``frontier``: planner.sweep.pareto_frontier's rows)."""
    fig = go.Figure()
    for i, (name, g) in enumerate(df.groupby(series, sort=True)):
        g = g.sort_values("batch")
        fig.add_scatter(x=g[x], y=g[y], mode="lines+markers", name=str(name), line=dict(color=PALETTE[i % 10]),
                        customdata=g[["batch"]].to_numpy(),
                        hovertemplate="batch %{customdata[0]}<br>%{x:.1f} tok/s/user<br>%{y:,.0f} tok/s/GPU"
                                      "<extra>" + str(name) + "</extra>")
    if len(frontier):
        f = frontier.sort_values(x)
        fig.add_scatter(x=f[x], y=f[y], mode="lines", name=t("Pareto frontier"),
                        line=dict(color="black", width=2, dash="dash"), hoverinfo="skip")
    return _layout(fig, "Latency vs throughput over batch size", "tokens/s per user (1 / TPOT)",
                   "output tokens/s per GPU", height=460)


def lines(df: pd.DataFrame, x: str, y: str, series: str, title: str, x_title: str, y_title: str,
          hlines: dict[str, float] | None = None, log_x: bool = False, y_scale: float = 1.0,
          markers: bool = False, log_y: bool = False) -> go.Figure:
    """One line per ``series``; ``hlines`` adds labelled horizontal limits (same units as y after scaling).
    Log axes show decades only (1k, 10k, ...), so their labels never crowd."""
    fig = go.Figure()
    drawn: list[pd.Series] = []
    for i, (name, g) in enumerate(df.groupby(series, sort=False)):
        g = g.sort_values(x)
        ys = pd.Series((g[y] / y_scale).to_numpy(), index=g[x].to_numpy())
        # a line within 10 % of one drawn before (fp16 and bf16 KV are the same bytes) would hide it: dashed
        twins = sum(_close(ys, other) for other in drawn)
        drawn.append(ys)
        fig.add_scatter(x=g[x], y=ys.to_numpy(), mode="lines+markers" if markers else "lines", name=str(name),
                        line=dict(color=PALETTE[i % 10], dash=DASHES[min(twins, len(DASHES) - 1)],
                                  width=2 + (twins > 0)))
    for label, value in (hlines or {}).items():
        fig.add_hline(y=value, line=dict(color="black", dash="dot"))
        # an annotation's y on a log axis is log10 of the value (a shape's is the value itself)
        fig.add_annotation(x=0, xref="paper", y=float(np.log10(value)) if log_y else value, text=label,
                           showarrow=False, xanchor="left", yanchor="bottom")
    if log_x:
        fig.update_xaxes(type="log", dtick=1, tickformat="~s")
    if log_y:
        fig.update_yaxes(type="log", dtick=1, tickformat="~g")
    return _layout(fig, title, x_title, y_title)


DASHES = ("solid", "dash", "dot", "dashdot")
DENSE_BARS = 14   # more bars than this: their value labels stand upright, or they would run into each other


def _close(a: pd.Series, b: pd.Series, rel: float = 0.10) -> bool:
    """Whether two lines over the same x values stay within ``rel`` of each other everywhere."""
    common = a.index.intersection(b.index)
    if len(common) < 2:
        return False
    u, v = a.loc[common].to_numpy(dtype=float), b.loc[common].to_numpy(dtype=float)
    scale = np.maximum(np.abs(u), np.abs(v))
    return bool(np.all(np.abs(u - v) <= rel * np.where(scale > 0, scale, 1.0)))


def bars(df: pd.DataFrame, x: str, y: str, title: str, y_title: str, color: str | None = None,
         text: str | None = None, hlines: dict[str, float] | None = None, height: int = 380,
         log_y: bool = False) -> go.Figure:
    """A bar per row (grouped by ``color`` when given)."""
    fig = go.Figure()
    groups = df.groupby(color, sort=False) if color else [(t(y_title), df)]
    dense = len(df) > DENSE_BARS
    for i, (name, g) in enumerate(groups):
        fig.add_bar(x=g[x].astype(str), y=g[y], name=str(name), marker_color=PALETTE[i % 10],
                    text=g[text] if text else None, textposition="outside" if text else None,
                    textangle=-90 if dense else 0, constraintext="none", cliponaxis=False)
    for label, value in (hlines or {}).items():
        fig.add_hline(y=value, line=dict(color="black", dash="dot"), annotation_text=label,
                      annotation_position="top left")
    fig.update_layout(barmode="group", showlegend=bool(color))
    if log_y:
        fig.update_yaxes(type="log")
    else:  # room above the tallest bar's label and above a limit's label, under the legend
        top = max([float(df[y].max()) if len(df) else 0.0, *(hlines or {}).values()])
        if top > 0:
            fig.update_yaxes(range=[0, top * (1.25 if dense and text else 1.15)])
    _layout(fig, title, "", y_title, height=height)
    # above the plot: rotated category labels below it would run into a legend there
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig


def hbars(df: pd.DataFrame, label: str, value: str, title: str, value_title: str, color: str | None = None,
          text: str | None = None, barmode: str = "overlay") -> go.Figure:
    """Horizontal bars, one per label in the frame's order from the top (long labels stay readable);
    ``barmode="group"`` puts the ``color`` groups of one label side by side."""
    fig = go.Figure()
    groups = df.groupby(color, sort=False) if color else [(t(value_title), df)]
    for i, (name, g) in enumerate(groups):
        fig.add_bar(y=g[label].astype(str), x=g[value], name=str(name), orientation="h", marker_color=PALETTE[i % 10],
                    text=g[text] if text else None, textposition="outside" if text else None, cliponaxis=False)
    fig.update_yaxes(categoryorder="array", categoryarray=list(dict.fromkeys(df[label].astype(str))),
                     autorange="reversed")
    fig.update_layout(barmode=barmode, showlegend=bool(color))
    n = df[label].nunique() * (df[color].nunique() if color and barmode == "group" else 1)
    _layout(fig, title, value_title, "", height=120 + 24 * n)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig


def offload(df: pd.DataFrame, fitting_layers: int, total_layers: int) -> go.Figure:
    """Decode tokens/s (batch 1) against layers on the GPU; the rest run from host memory."""
    fig = go.Figure()
    ok, over = df[df["fits_on_gpu"]], df[~df["fits_on_gpu"]]
    fig.add_scatter(x=ok["gpu_layers"], y=ok["tokens_per_s"], mode="lines+markers", name=t("fits in GPU memory"),
                    line=dict(color=PALETTE[0]))
    if len(over):
        fig.add_scatter(x=over["gpu_layers"], y=over["tokens_per_s"], mode="lines+markers",
                        name=t("would not fit"), line=dict(color=PALETTE[3], dash="dot"))
    fig.add_vline(x=fitting_layers, line=dict(color="black", dash="dash"),
                  annotation_text=t("-ngl {n} (most that fit)").format(n=fitting_layers), annotation_position="top left")
    fig.update_xaxes(range=[-0.5, total_layers + 0.5])
    return _layout(fig, "GGUF partial offload: layers on the GPU vs decode speed", "layers on the GPU (-ngl)",
                   "tokens/s (batch 1)")


def validation_scatter(df: pd.DataFrame, predicted: str = "predicted", color: str = "gpu",
                       unit_scale: float = 1.0, unit: str = "") -> go.Figure:
    """Predicted against measured (log-log) with the y = x line: points below it are optimistic."""
    fig = go.Figure()
    d = df[np.isfinite(df["measured"].astype(float)) & np.isfinite(df[predicted].astype(float))]
    d = d[(d["measured"] > 0) & (d[predicted] > 0)]
    for i, (name, g) in enumerate(d.groupby(color, sort=True)):
        fig.add_scattergl(x=g["measured"] / unit_scale, y=g[predicted] / unit_scale, mode="markers", name=str(name),
                          marker=dict(color=PALETTE[i % 10], size=5, opacity=0.6))
    if len(d):
        lo = float(min(d["measured"].min(), d[predicted].min())) / unit_scale
        hi = float(max(d["measured"].max(), d[predicted].max())) / unit_scale
        fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name=t("y = x (exact)"),
                        line=dict(color="black", dash="dash"))
    fig.update_xaxes(type="log", dtick=1, tickformat="~g")
    fig.update_yaxes(type="log", dtick=1, tickformat="~g")
    return _layout(fig, "Predicted vs measured", t("measured {unit}").format(unit=unit).strip(), t("predicted {unit}").format(unit=unit).strip(), height=460)


def roofline(peak_flops: float, bandwidth_bytes_per_s: float, points: pd.DataFrame) -> go.Figure:
    """Attainable FLOP/s = min(peak, bandwidth x intensity); ``points``: name, intensity (FLOP/byte)."""
    ridge = peak_flops / bandwidth_bytes_per_s
    lo = min(0.5, float(points["intensity"].min()) / 2) if len(points) else 0.5
    hi = max(ridge * 20, float(points["intensity"].max()) * 2) if len(points) else ridge * 20
    xs = np.geomspace(lo, hi, 200)
    fig = go.Figure()
    fig.add_scatter(x=xs, y=np.minimum(peak_flops, bandwidth_bytes_per_s * xs) / 1e12, mode="lines",
                    name=t("roofline (datasheet)"), line=dict(color="black"))
    for i, row in enumerate(points.itertuples(index=False)):
        y = min(peak_flops, bandwidth_bytes_per_s * row.intensity) / 1e12
        fig.add_scatter(x=[row.intensity], y=[y], mode="markers+text", name=row.name, text=[row.name],
                        textposition="top center", marker=dict(size=14, color=PALETTE[(i + 1) % 10]))
    # on a log axis an annotation's x is log10 of the value (a shape's is the value itself)
    fig.add_vline(x=ridge, line=dict(color="grey", dash="dot"))
    fig.add_annotation(x=float(np.log10(ridge)), y=0.02, yref="paper", text=t(" ridge {x:.0f} FLOP/byte").format(x=ridge),
                       showarrow=False, xanchor="left", yanchor="bottom")
    fig.update_xaxes(type="log", dtick=1, tickformat="~g")
    fig.update_yaxes(type="log", dtick=1, tickformat="~g")
    return _layout(fig, "Prefill vs decode on the roofline", "arithmetic intensity (FLOP per byte moved)",
                   "attainable TFLOP/s", height=400)
