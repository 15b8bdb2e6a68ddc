"""Calibration recovers known parameters from synthetic data; validation joins and scores correctly."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner import calibrate, reference, validate
from planner.gpus import GpuSpec
from planner.timing import Efficiency
from tiny_configs import TINY

RNG = np.random.default_rng(7)


def noisy(t, pct=1.0):
    return t * (1 + RNG.normal(0, pct / 100, np.shape(t)))


def test_decode_step_fit_recovers_memory_and_overheads():
    # known: memory 0.72, step overhead 150 us, layer overhead 20 us, over models of 16 and 32 layers
    bw = 3.35e12
    bytes_ = RNG.uniform(2e9, 40e9, 200)
    layers = RNG.choice([16, 32], 200)
    t = noisy(150e-6 + layers * 20e-6 + bytes_ / (bw * 0.72))
    f = calibrate.fit_step_times(bytes_ / bw, layers, t, layer_overhead_default=3e-6)
    assert f["memory"] == pytest.approx(0.72, rel=0.01)
    assert f["step_overhead_s"] == pytest.approx(150e-6, rel=0.25)
    assert f["layer_overhead_s"] == pytest.approx(20e-6, rel=0.1)
    assert f["rel_residual_pct"] < 2


def test_one_layer_count_holds_the_layer_term_at_its_default():
    bw = 2e12
    bytes_ = RNG.uniform(1e9, 20e9, 50)
    t = noisy(300e-6 + 32 * 3e-6 + bytes_ / (bw * 0.8), 0.5)
    f = calibrate.fit_step_times(bytes_ / bw, np.full(50, 32), t, layer_overhead_default=3e-6)
    assert f["layer_overhead_s"] == 3e-6
    assert f["memory"] == pytest.approx(0.8, rel=0.01)
    assert f["step_overhead_s"] == pytest.approx(300e-6, rel=0.05)


def test_kernel_fit_recovers_both_constants_and_shared_bandwidth():
    x = RNG.uniform(1e-7, 1e-3, 400)  # bytes / datasheet bandwidth, seconds
    attn = RNG.random(400) < 0.4
    t = noisy(np.where(attn, 12e-6, 3e-6) + x / 0.85)
    f = calibrate.fit_memory_bound_kernels(x, attn, t)
    assert f["memory"] == pytest.approx(0.85, rel=0.01)
    assert f["gemm"] == pytest.approx(3e-6, rel=0.05)
    assert f["attention"] == pytest.approx(12e-6, rel=0.05)


def test_compute_fit_with_held_intercept():
    tc = RNG.uniform(1e-4, 1e-2, 100)  # FLOPs / datasheet peak
    t = noisy(3e-6 + tc / 0.81)
    f = calibrate.fit_relative(tc, t, intercept=3e-6)
    assert 1 / f.slope == pytest.approx(0.81, rel=0.01)
    assert f.intercept == 3e-6


def test_kernel_roofline_by_hand():
    g = GpuSpec(id="X", display_name="X", vendor="", memory_bytes=80e9, memory_bandwidth_bytes_per_s=2e12,
                peak_flops=(("bf16", 1e15),))
    eff = Efficiency(memory=0.5, compute=0.5, layer_overhead_s=5e-6)
    flops, bytes_ = reference.gemm_counts(4096, 4096, 4096)
    # 2 x 4096^3 = 137.4 GFLOP at 0.5 PFLOP/s = 274.9 us; bytes 3 x 4096^2 x 2 = 100.7 MB at 1 TB/s = 100.7 us
    # + 5 us / 5 kernels per layer = 1 us
    assert reference.kernel_seconds(flops, bytes_, g, eff) == pytest.approx(2 * 4096**3 / 0.5e15 + 1e-6)
    f, b = reference.generation_attention_counts(1, 32767, 32, 8, 128)
    # K+V of 32768 tokens x 8 kv heads x 128 x 2 bytes = 134.2 MB (the README's H100 example), + q and o
    assert b == pytest.approx(32768 * 8 * 128 * 2 * 2 + 32 * 128 * 2 * 2)


def write_profiler_csv(folder, name="llama-gqa"):
    """A profiler-shaped CSV whose KV bytes are 10 % above the prediction and parameter bytes exact."""
    from planner import kv
    from planner.params import params_total
    from planner.spec import ModelSpec

    spec = ModelSpec.from_hf_config(TINY[name], name)
    groups = kv.layer_groups(spec, "fp32", "transformers", state_bytes=4)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.config.json").write_text(json.dumps(TINY[name]))
    rows = []
    for b, p in [(1, 16), (4, 64)]:
        rows.append({"status": "ok", "device": "cpu", "gpu": "cpu", "model": name, "dtype": "fp32", "batch": b,
                     "prompt": p, "output": 8, "warmup": 2, "steps": 8, "context_end": p + 10,
                     "param_bytes": params_total(spec) * 4,
                     "kv_bytes": float(kv.kv_cache_bytes(groups, b, p + 10, "transformers")) * 1.1,
                     "peak_allocated_bytes": np.nan, "prefill_s": 0.01, "decode_step_median_s": 0.001,
                     "decode_step_mean_s": 0.0011, "decode_context_median": p + 5.5})
    rows.append({**rows[0], "status": "oom", "batch": 64})
    pd.DataFrame(rows).to_csv(folder / f"{name}_20260101T000000Z.csv", index=False)
    return folder


def test_validate_joins_a_synthetic_csv(tmp_path):
    write_profiler_csv(tmp_path / "cpu")
    df = validate.validation_table(dirs=[tmp_path], reference=False)
    assert set(validate.COLUMNS) <= set(df.columns)
    kvr = df[df["metric"] == "kv_bytes"]
    assert len(kvr) == 2 and np.allclose(kvr["error_pct"], -100 * 0.1 / 1.1)  # (p - 1.1p) / 1.1p
    assert (df.loc[df["metric"] == "weights_bytes", "error_pct"] == 0).all()
    assert 64 not in set(df["batch"])  # an OOM row has nothing to compare
    # CPU timings are kept (measured) but have no roofline prediction: never scored
    assert df.loc[df["metric"] == "decode_step_s", "predicted"].isna().all()
    s = validate.summary(df)
    row = s[(s["metric"] == "kv_bytes")].iloc[0]
    assert row["n"] == 2 and row["median_signed_error_pct"] == pytest.approx(-9.0909, rel=1e-3)
    assert row["worst_abs_error_pct"] == pytest.approx(9.0909, rel=1e-3)
    band = validate.bands(df)["cpu"]["kv_bytes"]
    assert band["n"] == 2 and band["pct"] == pytest.approx(9.09, abs=0.01)


def test_error_band_is_none_without_measurements(monkeypatch, tmp_path):
    monkeypatch.setattr(validate.profiles, "load_calibrations", lambda: {})
    monkeypatch.setattr(validate.profiles, "measurement_dirs", lambda: [tmp_path])
    assert validate.error_band("H100-SXM", "tpot_s") is None


def test_error_band_reads_the_calibration(monkeypatch):
    cal = {"H100-SXM": {"paged": {"error_bands": {"tpot_s": {"pct": 8.0, "n": 42, "source": "s"}}}}}
    monkeypatch.setattr(validate.profiles, "load_calibrations", lambda: cal)
    assert validate.error_band("H100-SXM", "tpot_s") == {"pct": 8.0, "n": 42, "source": "s"}


def test_kernel_calibration_end_to_end_on_synthetic_reference(tmp_path):
    """AIC-shaped CSVs generated from known efficiencies: calibrate() gets them back."""
    gpus = validate.profiles.gpus()
    if "H100-SXM" not in gpus:
        pytest.skip("no H100-SXM profile bundled")
    g = gpus["H100-SXM"]
    m, n, k = (a.ravel() for a in np.meshgrid([1, 2, 4, 8, 16, 2048, 4096, 8192], [1024, 4096, 8192],
                                               [1024, 4096, 8192]))
    flops, bytes_ = reference.gemm_counts(m, n, k)
    lat = 3e-6 + np.maximum(flops / (g.flops("bf16") * 0.8), bytes_ / (g.memory_bandwidth_bytes_per_s * 0.75))
    ref = tmp_path / "profiling"
    ref.mkdir()
    pd.DataFrame({"m": m, "n": n, "k": k, "latency_ms": lat * 1e3}).to_csv(ref / "aic_vllm014_h100_sxm_gemm_bf16.csv",
                                                                           index=False)
    b, s = (a.ravel() for a in np.meshgrid([1, 8, 64], [1023, 8191, 32767]))
    fa, ba = reference.generation_attention_counts(b, s, 32, 8, 128)
    pd.DataFrame({"batch_size": b, "isl": 1, "step": s, "num_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                  "latency_ms": (12e-6 + ba / (g.memory_bandwidth_bytes_per_s * 0.75)) * 1e3}).to_csv(
        ref / "aic_vllm014_h100_sxm_generation_attention_bf16.csv", index=False)
    fits = calibrate.calibrate(dirs=[tmp_path / "none"], reference=ref, gpus=["H100-SXM"])
    f = fits["H100-SXM"]["paged"]
    assert f["memory"] == pytest.approx(0.75, rel=0.01)
    assert f["compute"] == pytest.approx(0.8, rel=0.01)
    assert f["kernel_latency_s"]["gemm"] == pytest.approx(3e-6, rel=0.05)
    assert f["layer_overhead_s"] == pytest.approx(4 * 3e-6 + 12e-6, rel=0.05)
    assert f["error_bands"]["gemm_s"]["pct"] < 1  # the fitted model reproduces its own data


def test_core_modules_do_not_import_torch():
    import subprocess
    code = ("import sys; import planner.validate, planner.calibrate, planner.cli_validation; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent).returncode == 0
