"""The on-GPU validation run (scripts/gpu_validate.py) rehearsed on the CPU with tiny configs.

The same code path as ``make gpu-validate``, with ``--device cpu`` and a tiny matrix (batch 1/2,
prompt 16/32, 4 output tokens): a row for every point, KV and parameter bytes equal to the planner's
prediction, the CSV and environment files, the cheapest point of every model first, a spent budget
as a clean partial run, a layer kind without its kernels as skipped rows with the reason.
"""

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from planner import profiles, validate
from planner.spec import ModelSpec
from profiler import run as prun
from tiny_configs import TINY

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_validate", ROOT / "scripts" / "gpu_validate.py")
gv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gv)

KINDS = ["llama-gqa", "gemma2-interleaved", "qwen3-moe", "deepseek-mla", "qwen3next-hybrid"]
TINY_MATRIX = ["--device", "cpu", "--batch", "1,2", "--prompt", "16,32", "--output", "4"]


@pytest.fixture(autouse=True)
def one_thread():
    # tiny matrices: two threads per xdist worker on two cores only wait on each other
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def configs(tmp_path, kinds):
    out = []
    for k in kinds:
        folder = tmp_path / "configs" / f"tiny-{k}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(TINY[k]))
        out.append(str(folder))
    return ",".join(out)


def rows(out, kind):
    (path,) = out.glob(f"tiny-{kind}_*.csv")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiny_matrix_rows_kv_bytes_files_and_order(tmp_path, capsys):
    out = tmp_path / "out"
    assert gv.main([*TINY_MATRIX, "--models", configs(tmp_path, KINDS), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    for kind in KINDS[:-1]:
        spec = ModelSpec.from_hf_config(TINY[kind], f"tiny-{kind}")
        got = rows(out, kind)
        assert sorted((int(r["batch"]), int(r["prompt"])) for r in got) == [(1, 16), (1, 32), (2, 16), (2, 32)]
        for r in got:
            b, p, end = int(r["batch"]), int(r["prompt"]), int(r["context_end"])
            assert r["status"] == "ok" and r["timer"] == "perf_counter" and end == p + 3 + 4
            assert int(r["kv_bytes_prefill"]) == prun.predicted_kv_bytes(spec, "bf16", b, p)
            assert int(r["kv_bytes"]) == prun.predicted_kv_bytes(spec, "bf16", b, end)
            assert int(r["param_bytes"]) == prun.predicted_param_bytes(spec, "bf16")
            assert float(r["prefill_s"]) > 0 and float(r["decode_step_median_s"]) > 0
        assert (out / f"tiny-{kind}.config.json").is_file()
        assert next(out.glob(f"tiny-{kind}_*.env.json")).is_file()
    # the hybrid's Gated DeltaNet kernels (flash-linear-attention) are CUDA-only: skipped rows with the reason
    hybrid = rows(out, "qwen3next-hybrid")
    assert len(hybrid) == 4 and {r["status"] for r in hybrid} == {"skipped"}
    assert all("flash-linear-attention" in r["error"] for r in hybrid)
    ledger = json.loads((out / "gpu-validate.json").read_text())
    assert ledger["finished"] and not ledger["not_started"] and list(ledger["skipped_models"]) == ["tiny-qwen3next-hybrid"]
    assert ledger["environment"]["torch"] == torch.__version__ and len(ledger["points"]) == 20
    # one line per measured point, every model's cheapest point before anyone's second
    lines = [ln for ln in printed.out.splitlines() if " ok " in ln]
    assert len(lines) == 16 and all("prefill" in ln and "decode" in ln for ln in lines)
    assert all("batch   1 prompt    16" in ln for ln in lines[:4])
    # `planner validate` reads the folder as it is: KV and weights exact
    df = validate.validation_table(dirs=[out], reference=False)
    exact = df[df["metric"].isin(["kv_bytes", "weights_bytes"])]
    assert len(exact) == 32 and (exact["error_pct"] == 0).all()


def test_spent_budget_is_a_clean_partial_run_and_a_rerun_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    models = configs(tmp_path, ["llama-gqa"])
    args = ["--device", "cpu", "--batch", "1,2", "--prompt", "16", "--output", "4", "--models", models, "--out", str(out)]
    assert gv.main([*args, "--budget-s", "0"]) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    assert "time budget of 0 s spent: 2 points not started" in printed.out
    ledger = json.loads((out / "gpu-validate.json").read_text())
    assert ledger["finished"] and ledger["not_started"] == ["tiny-llama-gqa 1 x 16", "tiny-llama-gqa 2 x 16"]
    assert not list(out.glob("*.csv"))
    assert gv.main(args) == 0  # same folder, default budget: measures what is missing
    assert [(r["batch"], r["status"]) for r in rows(out, "llama-gqa")] == [("1", "ok"), ("2", "ok")]
    ledger = json.loads((out / "gpu-validate.json").read_text())
    assert len(ledger["commands"]) == 2 and not ledger["not_started"]


def test_budget_stops_before_a_point_that_would_overrun(tmp_path, capsys, monkeypatch):
    # batch 2 is "estimated" at 10^6 s: batch 1 runs, batch 2 is not started, the run ends cleanly
    monkeypatch.setattr(gv, "point_estimate_s", lambda tm, last, b, p, w, s: 0.0 if b == 1 else 1e6)
    out = tmp_path / "out"
    code = gv.main(["--device", "cpu", "--batch", "1,2", "--prompt", "16", "--output", "2",
                    "--models", configs(tmp_path, ["llama-mqa"]), "--out", str(out)])
    assert code == 0
    assert [r["batch"] for r in rows(out, "llama-mqa")] == ["1"]
    assert "1 points not started (tiny-llama-mqa 2 x 16)" in capsys.readouterr().out


def test_point_estimate_scales_the_roofline_by_the_last_point():
    class Roofline:  # prefill 0.1 ms per token, decode step 1 ms
        def prefill(self, b, p):
            return {"time_s": 1e-4 * b * p}

        def decode_step(self, b, ctx):
            return {"time_s": 1e-3}

    # no point measured yet: 2 prefills x (2 x 32 x 0.1 ms) + (3 + 4) steps x 1 ms = 12.8 + 7 = 19.8 ms
    assert gv.point_estimate_s(Roofline(), None, 2, 32, 3, 4) == pytest.approx(0.0198)
    # the last point ran prefill 3x and decode 2x slower than its roofline: 3 x 12.8 + 2 x 7 = 52.4 ms
    last = {"batch": "1", "prompt": "16", "prefill_s": "0.0048", "decode_step_median_s": "0.002"}
    assert gv.point_estimate_s(Roofline(), last, 2, 32, 3, 4) == pytest.approx(0.0524)


def test_kernel_gap_names_the_missing_package(monkeypatch):
    monkeypatch.setitem(gv.KERNELS, "llama", ("no_such_kernels.ops", "fused", "no-such-kernels"))
    monkeypatch.setitem(gv.KERNELS, "mistral", ("json", "dumps", "json"))
    assert "no-such-kernels is not importable (no_such_kernels.ops: ModuleNotFoundError" in gv.kernel_gap("llama", "cuda")
    assert gv.kernel_gap("mistral", "cuda") is None
    assert gv.kernel_gap("gemma2", "cuda") is None
    assert "CUDA kernel" in gv.kernel_gap("qwen3_next", "cpu")


def test_default_matrix_fits_one_h200_in_bf16(tmp_path):
    # weights alone under 90% of an H200: Qwen3-Next only once cut to DEPTH layers (148 GiB whole)
    h200 = profiles.gpu("H200").memory_bytes
    for name in gv.MODELS:
        m = gv.Model(prun, name, tmp_path, "cpu", "bf16", h200)
        assert gv.fit_gap(m.weights_bytes, h200, "bf16") is None, name
    full = ModelSpec.from_hf_config(prun.read_config("Qwen3-Next-80B-A3B-Instruct")[0], "q")
    assert "do not fit" in gv.fit_gap(prun.predicted_param_bytes(full, "bf16"), h200, "bf16")
    cut = json.loads((tmp_path / "Qwen3-Next-80B-A3B-Instruct-8L" / "config.json").read_text())
    assert cut["num_hidden_layers"] == 8 and ModelSpec.from_hf_config(cut, "q").num_layers == 8


def test_missing_requirement_is_one_message_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setitem(gv.REQUIRED, "no_such_module_xyz", "the test")
    assert gv.main(["--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no_such_module_xyz: the test" in err and "Traceback" not in err
