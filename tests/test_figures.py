"""The plotly figure builders: a DataFrame in, a figure out, no Streamlit needed."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import figures
from planner.sweep import pareto_mask

GIB = 2**30


def test_builders_do_not_import_streamlit():
    src = open(figures.__file__).read()
    assert "import streamlit" not in src and "from streamlit" not in src


def test_memory_bar_stacks_the_parts_against_capacity():
    parts = pd.DataFrame({"component": ["weights", "KV cache", "activations", "overhead"],
                          "bytes": [16 * GIB, 5 * GIB, 1 * GIB, 0.2 * GIB]})
    fig = figures.memory_bar(parts, capacity_bytes=72e9, total_bytes=80e9)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["weights", "KV cache", "activations", "overhead"]
    # 16 + 5 + 1 + 0.2 GiB stacked = 22.2 GiB
    assert abs(sum(t.x[0] for t in fig.data) - 22.2) < 1e-9
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert any(abs(s.x0 - 72e9 / GIB) < 1e-9 for s in lines), "usable-capacity line"
    assert fig.layout.barmode == "stack"


def test_the_dashboard_has_no_frontier_code_of_its_own():
    assert not hasattr(figures, "frontier_mask"), "the frontier is planner.sweep.pareto_frontier's job"


def test_pareto_draws_one_line_per_series_and_the_frontier():
    df = pd.DataFrame({"series": ["a"] * 3 + ["b"] * 3, "batch": [1, 8, 64] * 2,
                       "tokens_per_s_per_user": [100, 80, 30, 120, 90, 20],
                       "output_tokens_per_s_per_gpu": [100, 640, 1920, 120, 720, 1280]})
    front = df[pareto_mask(df["tokens_per_s_per_user"].to_numpy(), df["output_tokens_per_s_per_gpu"].to_numpy())]
    fig = figures.pareto(df, front)
    assert [t.name for t in fig.data] == ["a", "b", "Pareto frontier"]
    assert list(fig.data[-1].x) == sorted(front["tokens_per_s_per_user"])


def test_lines_scales_y_and_draws_limits():
    df = pd.DataFrame({"s": ["bf16"] * 2 + ["fp8"] * 2, "ctx": [1, 2, 1, 2], "b": [2 * GIB, 4 * GIB, GIB, 2 * GIB]})
    fig = figures.lines(df, "ctx", "b", "s", "t", "x", "GiB", hlines={"room": 3.0}, y_scale=GIB, log_x=True)
    assert list(fig.data[0].y) == [2.0, 4.0] and list(fig.data[1].y) == [1.0, 2.0]
    assert fig.layout.xaxis.type == "log"
    assert any(s.y0 == 3.0 for s in fig.layout.shapes)


def test_bars_group_by_color():
    df = pd.DataFrame({"gpu": ["A", "B", "A"], "usd": [1.0, 2.0, 0.5], "op": ["x", "x", "y"]})
    fig = figures.bars(df, "gpu", "usd", "t", "USD", color="op")
    assert [t.name for t in fig.data] == ["x", "y"]
    assert fig.layout.barmode == "group"


def test_offload_marks_the_layers_that_fit():
    df = pd.DataFrame({"gpu_layers": [0, 10, 20, 32], "tokens_per_s": [2.0, 3.0, 5.0, 40.0],
                       "fits_on_gpu": [True, True, True, False]})
    fig = figures.offload(df, fitting_layers=20, total_layers=32)
    assert [t.name for t in fig.data] == ["fits in GPU memory", "would not fit"]
    assert any(s.x0 == 20 for s in fig.layout.shapes)


def test_validation_scatter_has_the_identity_line_and_drops_bad_points():
    df = pd.DataFrame({"gpu": ["H100", "H100", "A100", "A100"], "measured": [1e-3, 2e-3, np.nan, 4e-3],
                       "predicted": [1.1e-3, 1.8e-3, 1e-3, 0.0]})
    fig = figures.validation_scatter(df, unit_scale=1e-3, unit="(ms)")
    names = [t.name for t in fig.data]
    assert names == ["H100", "y = x (exact)"]  # the NaN and the zero point are dropped
    ident = fig.data[-1]
    assert list(ident.x) == list(ident.y)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_roofline_places_prefill_above_decode():
    pts = pd.DataFrame({"name": ["prefill", "decode"], "intensity": [700.0, 20.0]})
    fig = figures.roofline(989e12, 3.35e12, pts)
    ys = {t.name: t.y[0] for t in fig.data[1:]}
    # decode: 3.35e12 x 20 = 67 TFLOP/s; prefill: capped at the 989 TFLOP/s peak
    assert abs(ys["decode"] - 67.0) < 1e-9 and abs(ys["prefill"] - 989.0) < 1e-9



def test_bars_can_use_a_log_axis():
    df = pd.DataFrame({"gpu": ["A", "B"], "usd": [0.1, 20.0]})
    assert figures.bars(df, "gpu", "usd", "t", "USD", log_y=True).layout.yaxis.type == "log"


def test_hbars_keep_the_rank_order_from_the_top():
    df = pd.DataFrame({"plan": ["2 x A", "1 x B", "4 x C"], "usd": [0.5, 0.9, 0.4], "status": ["meets", "meets", "x"]})
    fig = figures.hbars(df, "plan", "usd", "t", "USD", color="status")
    assert [t.name for t in fig.data] == ["meets", "x"] and fig.data[0].orientation == "h"
    assert list(fig.layout.yaxis.categoryarray) == ["2 x A", "1 x B", "4 x C"]
    assert fig.layout.yaxis.autorange == "reversed"


def test_roofline_ridge_label_sits_at_the_ridge_on_the_log_axis():
    pts = pd.DataFrame({"name": ["prefill", "decode"], "intensity": [700.0, 20.0]})
    fig = figures.roofline(989e12, 3.35e12, pts)
    ridge = 989e12 / 3.35e12
    label = next(a for a in fig.layout.annotations if a.text.strip().startswith("ridge"))
    assert abs(label.x - np.log10(ridge)) < 1e-9, "annotations on a log axis take log10(x)"
    assert all(not (a.text or "").startswith("ridge") or a.x < 4 for a in fig.layout.annotations)


def test_limit_labels_sit_on_their_line_on_a_log_axis():
    df = pd.DataFrame({"s": ["a", "a"], "ctx": [1, 2], "b": [1.0, 100.0]})
    fig = figures.lines(df, "ctx", "b", "s", "t", "x", "GiB", hlines={"room": 50.0}, log_y=True)
    label = next(a for a in fig.layout.annotations if a.text == "room")
    assert abs(label.y - np.log10(50.0)) < 1e-12
    assert next(s for s in fig.layout.shapes if s.type == "line").y0 == 50.0
    lin = figures.lines(df, "ctx", "b", "s", "t", "x", "GiB", hlines={"room": 50.0})
    assert next(a for a in lin.layout.annotations if a.text == "room").y == 50.0


def test_a_line_that_runs_on_top_of_another_is_dashed_so_both_show():
    # fp16 and bf16 KV take the same bytes: drawn solid, the second would hide the first (and its legend line
    # would point at nothing); fp8 is half of them, drawn solid
    ctx = [256, 4096, 65536]
    df = pd.DataFrame({"kv": ["fp16"] * 3 + ["bf16"] * 3 + ["fp8"] * 3, "context": ctx * 3,
                       "gib": [1.0, 16.0, 256.0] * 2 + [0.5, 8.0, 128.0]})
    fig = figures.lines(df, "context", "gib", "kv", "KV", "context", "GiB", log_x=True, log_y=True)
    dashes = {t.name: t.line.dash for t in fig.data}
    assert dashes == {"fp16": "solid", "bf16": "dash", "fp8": "solid"}


def test_dense_bars_stand_their_labels_upright_and_leave_room_above_a_limit():
    df = pd.DataFrame({"format": [f"f{i}" for i in range(20)], "gib": np.linspace(1, 30, 20)})
    df["text"] = df["gib"].map(lambda v: f"{v:.1f}")
    fig = figures.bars(df, "format", "gib", "Weight memory", "GiB", text="text", hlines={"usable": 72.9})
    assert fig.data[0].textangle == -90 and fig.data[0].constraintext == "none"
    lo, hi = fig.layout.yaxis.range
    assert lo == 0 and hi > 72.9 * 1.1   # the limit's label sits inside the plot, under the legend above it
    few = figures.bars(df.head(4), "format", "gib", "Weight memory", "GiB", text="text")
    assert few.data[0].textangle == 0
