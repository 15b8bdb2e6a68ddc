"""What the SLO search considers (planner/slo_space.py): the default axes, which combinations are legal,
where pipeline stages are added, and what the caller's lists narrow it to. Weights per GPU are stubbed
(``slo_space.weights_per_gpu``, the seam) where the PP rule is tested, so each threshold is by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthetic import H100
from test_kv_known import LLAMA31_8B

from planner import profiles, slo_space
from planner.spec import ModelSpec

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "Llama-3.1-8B")  # bf16 checkpoint, 32 heads, 8 KV heads, 32 layers
NEEDED = {"H100-SXM", "A100-SXM-80GB", "L4", "A40"}
pytestmark = pytest.mark.skipif(not NEEDED <= set(profiles.gpus()), reason="needs the bundled GPU profiles")
FP8 = replace(H100, peak_flops=(("bf16", 989.4e12), ("fp8", 1978.9e12)))


def shaped(heads: int, kv_heads: int, layers: int = 32) -> ModelSpec:
    return ModelSpec.from_hf_config({**LLAMA31_8B, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                                     "hidden_size": 128 * heads, "num_hidden_layers": layers}, f"h{heads}-kv{kv_heads}")


def test_formats_the_gpu_runs_well_with_the_checkpoints_own_first():
    assert slo_space.formats_for(SPEC, FP8) == ("bf16", "fp8", "fp8-block")
    assert slo_space.formats_for(SPEC, H100) == ("bf16",)  # no fp8 tensor cores
    ds = profiles.load_model("DeepSeek-V3")  # an fp8-block checkpoint: its own format first, listed once
    assert slo_space.formats_for(ds, FP8) == ("fp8-block", "bf16", "fp8")
    assert slo_space.formats_for(ds, H100) == ("fp8-block", "bf16")


def test_kv_dtypes_the_gpu_runs():
    assert slo_space.kv_dtypes_for(FP8) == ("bf16", "fp8")
    assert slo_space.kv_dtypes_for(H100) == ("bf16",)


def test_tp_degrees_that_split_the_heads():
    assert slo_space.tps_for(SPEC) == (1, 2, 4, 8)
    assert slo_space.tps_for(shaped(12, 12)) == (1, 2, 4)          # 12 heads do not split over 8
    assert slo_space.tps_for(shaped(24, 3)) == (1,)                # 3 KV heads: 2, 4, 8 neither divide nor are multiples
    assert slo_space.tps_for(shaped(24, 24)) == (1, 2, 4, 8)       # TP 16 (two nodes) is never a default
    assert slo_space.tps_for(shaped(16, 2)) == (1, 2, 4, 8)        # 4 and 8 are multiples of 2 KV heads


@pytest.fixture
def weights(monkeypatch):
    """Weights per GPU = W / (TP x PP) bytes, on a GPU of 100 bytes (90 may hold weights)."""
    calls = []

    def fake(spec, fmt, tp, pp):
        calls.append((spec.name, fmt, tp, pp))
        return fake.W / (tp * pp)

    fake.W, fake.calls = 0.0, calls
    monkeypatch.setattr(slo_space, "weights_per_gpu", fake)
    return fake


GPU100 = replace(H100, memory_bytes=100.0, nvml_total_memory_bytes=0.0)


@pytest.mark.parametrize("w,want", [
    (180, (1,)),        # 180 / 2 = 90 <= 0.9 x 100: one node holds them
    (181, (2, 4)),      # 90.5 > 90; PP 2: 45.25 fits -> the fewest stages that fit and twice that
    (360, (2, 4)),      # PP 2: 90, just fits
    (361, (4, 8)),      # PP 2: 90.25 does not; PP 4 does
    (1440, (8,)),       # only PP 8 (90) fits, and 16 is past MAX_PP
    (1441, (8,)),       # nothing fits: the most stages, to be rejected for memory with the figures
])
def test_pipeline_stages_only_where_one_node_cannot_hold_the_weights(weights, w, want):
    weights.W = w
    assert slo_space.pps_for(SPEC, GPU100, "fp8", 2) == want
    assert weights.calls[0] == ("Llama-3.1-8B", "fp8", 2, 1)
    assert {c[:3] for c in weights.calls} == {("Llama-3.1-8B", "fp8", 2)}  # every stage count asked of this format


def test_pipeline_stages_stop_at_the_models_layers(weights):
    weights.W = 1441
    assert slo_space.pps_for(shaped(32, 8, layers=4), GPU100, "bf16", 2) == (4,)       # PP 2, 4 (8 > 4 layers)
    assert slo_space.pps_for(shaped(32, 8, layers=2), GPU100, "bf16", 2) == (2,)
    assert slo_space.pps_for(shaped(32, 8, layers=1), GPU100, "bf16", 2) == (1,)       # no PP at all
    weights.W = 361
    assert slo_space.pps_for(shaped(32, 8, layers=4), GPU100, "bf16", 2) == (4,)       # 8 would be past the layers
    assert slo_space.pps_for(shaped(32, 8, layers=8), GPU100, "bf16", 2) == (4, 8)
    # a GPU's whole memory counts, measured when known: 200 bytes -> 180 may hold weights
    weights.W = 360
    assert slo_space.pps_for(SPEC, replace(GPU100, nvml_total_memory_bytes=200.0), "bf16", 2) == (1,)


def test_a_checked_point_carries_the_input_error_or_its_note():
    assert slo_space._checked(SPEC, "L4", 2, 1, "fp8", "fp8", "n") == slo_space.Point("L4", 2, 1, "fp8", "fp8", note="n")
    bad_tp = slo_space._checked(SPEC, "L4", 3, 1, "bf16", "bf16", "n")
    assert bad_tp == slo_space.Point("L4", 3, 1, "bf16", "bf16", error="tp: 32 attention heads do not split over 3 "
                                     "GPUs (use a TP degree in [1, 2, 4, 8, 16, 32])")
    assert slo_space._checked(SPEC, "L4", 1, 33, "bf16", "bf16").error == ("pp: 33 pipeline stages for 32 layers (use at "
                                                                          "most one stage per layer)")
    assert slo_space._checked(SPEC, "L4", 1, 1, "nope", "bf16").error.startswith("weights: unknown weight format 'nope'")
    assert slo_space._checked(SPEC, "L4", 1, 1, "bf16", "int3").error.startswith("kv_dtype: unknown KV dtype 'int3'")
    assert slo_space._checked(SPEC, "L4", 2, 1, "fp8", "fp8") == slo_space.Point("L4", 2, 1, "fp8", "fp8")  # no note
    assert slo_space._known("fp8-block") and not slo_space._known("nope")


def test_the_default_space_per_gpu(monkeypatch):
    stages = []

    def pps_for(spec, g, fmt, tp):
        assert spec is SPEC
        stages.append((g.id, fmt, tp))
        return (2, 4) if (g.id, fmt) == ("L4", "bf16") else (1,)

    monkeypatch.setattr(slo_space, "pps_for", pps_for)
    pts, whole = slo_space.points(SPEC, ("L4", "NoSuchGPU", "A40", "A100-SXM-80GB"), (), (), (), ())
    assert whole[1] == ("A40", "A40 has no price in its profile: it cannot be ranked by cost")
    assert whole[0][0] == "NoSuchGPU" and "unknown GPU 'NoSuchGPU'" in whole[0][1] and len(whole) == 2
    # PP is asked for at the largest TP only (8 for 32 heads), once per GPU and format
    assert stages == [("L4", "bf16", 8), ("L4", "fp8", 8), ("L4", "fp8-block", 8), ("A100-SXM-80GB", "bf16", 8)]
    l4 = [(p.tp, p.pp, p.weights, p.kv_dtype) for p in pts if p.gpu == "L4"]
    # format, then TP, then PP, then KV dtype; TP 8 of bf16 on PP 2 and 4
    assert l4[:10] == [(1, 1, "bf16", "bf16"), (1, 1, "bf16", "fp8"), (2, 1, "bf16", "bf16"), (2, 1, "bf16", "fp8"),
                       (4, 1, "bf16", "bf16"), (4, 1, "bf16", "fp8"), (8, 2, "bf16", "bf16"), (8, 2, "bf16", "fp8"),
                       (8, 4, "bf16", "bf16"), (8, 4, "bf16", "fp8")]
    assert len(l4) == 10 + 2 * 4 * 2  # fp8 and fp8-block: 4 TP x 2 KV dtypes each
    notes = {(p.tp, p.pp, p.weights): p.note for p in pts if p.gpu == "L4"}
    assert notes[(8, 2, "bf16")] == notes[(8, 4, "bf16")] == "PP: one node of 8 GPUs cannot hold the bf16 weights"
    assert notes[(8, 1, "fp8")] == notes[(4, 1, "bf16")] == ""
    a100 = [(p.tp, p.pp, p.weights, p.kv_dtype) for p in pts if p.gpu == "A100-SXM-80GB"]
    assert a100 == [(t, 1, "bf16", "bf16") for t in (1, 2, 4, 8)]  # no fp8: one format, one KV dtype
    assert all(not p.error for p in pts) and pts[0].gpu == "L4"


def test_the_callers_lists_narrow_the_space(monkeypatch):
    asked = []
    monkeypatch.setattr(slo_space, "pps_for", lambda spec, g, fmt, tp: asked.append(tp) or (2,))
    pts, whole = slo_space.points(SPEC, ("L4",), (2, 3), (), ("fp8",), ("bf16",))
    # TP 8 not asked for: no PP added; TP 3 is a row with its input error
    assert [(p.tp, p.pp, p.weights, p.kv_dtype, bool(p.error)) for p in pts] == [(2, 1, "fp8", "bf16", False),
                                                                                 (3, 1, "fp8", "bf16", True)]
    assert asked == [] and whole == []
    # a PP list applies to every TP, with no note; the default TPs stay the model's
    pts, _ = slo_space.points(SPEC, ("L4",), (), (1, 2), ("bf16",), ("fp8",))
    assert [(p.tp, p.pp) for p in pts] == [(t, s) for t in (1, 2, 4, 8) for s in (1, 2)]
    assert asked == [] and {p.note for p in pts} == {""}
    # a format unknown to the table is a row with the error, and no PP is worked out for it
    pts, _ = slo_space.points(SPEC, ("L4",), (8,), (), ("nope",), ("bf16",))
    assert [(p.tp, p.pp, p.note) for p in pts] == [(8, 1, "")] and pts[0].error.startswith("weights: unknown")
    assert asked == []
    # the node's TP is the model's largest default (4 for 12 heads), wherever the list goes
    pts, _ = slo_space.points(shaped(12, 12), ("L4",), (2, 4), (), ("bf16",), ("bf16",))
    assert asked == [4] and [(p.tp, p.pp) for p in pts] == [(2, 1), (4, 2)]
    assert pts[1].note == "PP: one node of 4 GPUs cannot hold the bf16 weights"


def test_the_default_gpus_are_every_bundled_profile():
    pts, whole = slo_space.points(SPEC, (), (1,), (1,), ("bf16",), ("bf16",))
    priced = [g for g, s in profiles.gpus().items() if s.price_usd_per_hour]
    assert [p.gpu for p in pts] == priced
    assert [g for g, _ in whole] == [g for g in profiles.gpus() if g not in priced]


def test_the_size_of_a_request():
    n = len(profiles.gpus())
    assert slo_space.space_size(3, 2, 5, 7) == 210
    assert slo_space.space_size(0, 0, 0, 0) == n * 4 * 4 * 2  # every GPU x TP 1, 2, 4, 8 x 4 formats x 2 KV dtypes
    assert slo_space.space_size(1, 0, 0, 0) == 32
    assert slo_space.space_size(0, 1, 1, 1) == n
    assert slo_space.space_size(1, 1, 0, 1) == 4 and slo_space.space_size(1, 1, 1, 0) == 2
    assert slo_space.space_size(1, 0, 1, 1) == 4
