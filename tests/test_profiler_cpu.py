"""The profiler on the CPU with tiny configs of every layer kind: the same code paths a GPU run takes.

Measured KV bytes (the cache tensors after prefill and after decoding) and parameter bytes must
equal the planner's prediction exactly; an out-of-memory point is a recorded row and the run goes
on; a rerun into the same folder measures only the points it lacks.
"""

import csv
import json

import pytest
import torch

from planner import cli, validate
from planner.spec import ModelSpec
from profiler import run as prun
from tiny_configs import TINY

KINDS = ["llama-gqa", "llama-mqa", "llama-mha", "mistral-sliding", "gemma2-interleaved", "gemma3-interleaved",
         "deepseek-mla", "mixtral-moe", "qwen3-moe"]


def write_config(tmp_path, name):
    folder = tmp_path / "configs" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY[name]))
    return folder


def rows(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def request(tmp_path, name, **kw):
    base = {"model": str(write_config(tmp_path, name)), "device": "cpu", "dtype": "fp32", "batches": (1, 2),
            "prompts": (5, 12), "output": 2, "warmup": 1, "out_dir": tmp_path / "out", "progress": False}
    return prun.Request(**{**base, **kw})


@pytest.mark.parametrize("name", KINDS)
def test_measured_kv_and_param_bytes_equal_prediction(tmp_path, name):
    # prompt 12 + 1 warm-up + 2 timed steps = 15 tokens: past the tiny sliding windows of 8
    path = prun.run(request(tmp_path, name))
    spec = ModelSpec.from_hf_config(TINY[name], name)
    got = rows(path)
    assert len(got) == 4 and {r["status"] for r in got} == {"ok"}
    for r in got:
        b, p, end = int(r["batch"]), int(r["prompt"]), int(r["context_end"])
        assert end == p + 1 + 2
        assert int(r["param_bytes"]) == prun.predicted_param_bytes(spec, "fp32")
        assert int(r["kv_bytes_prefill"]) == prun.predicted_kv_bytes(spec, "fp32", b, p)
        assert int(r["kv_bytes"]) == prun.predicted_kv_bytes(spec, "fp32", b, end)
        assert float(r["decode_step_median_s"]) > 0 and float(r["decode_step_p90_s"]) >= float(r["decode_step_median_s"])
        assert float(r["decode_achieved_bytes_per_s"]) > 0
    # the validation join reads the same CSV (and the config copied beside it): zero error on both
    df = validate.validation_table(dirs=[path.parent], reference=False)
    exact = df[df["metric"].isin(["kv_bytes", "weights_bytes"])]
    assert len(exact) == 8 and (exact["error_pct"] == 0).all()


def test_oom_is_a_row_and_the_run_goes_on(tmp_path, monkeypatch):
    real = prun.measure_point

    def fake(model, dev, vocab, batch, prompt, warmup, steps):
        if batch == 2 and prompt == 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, dev, vocab, batch, prompt, warmup, steps)

    monkeypatch.setattr(prun, "measure_point", fake)
    got = rows(prun.run(request(tmp_path, "llama-gqa")))
    status = {(int(r["batch"]), int(r["prompt"])): r["status"] for r in got}
    assert status == {(1, 5): "ok", (1, 12): "ok", (2, 5): "oom", (2, 12): "ok"}
    assert "out of memory" in next(r["error"] for r in got if r["status"] == "oom")


def test_rerun_resumes_in_the_same_csv(tmp_path):
    first = prun.run(request(tmp_path, "llama-gqa", batches=(1,)))
    assert len(rows(first)) == 2
    again = prun.run(prun.Request(**{**request(tmp_path / "x", "llama-gqa").__dict__,
                                     "model": str(tmp_path / "configs" / "llama-gqa"), "out_dir": tmp_path / "out"}))
    assert again == first
    got = rows(first)
    assert sorted((int(r["batch"]), int(r["prompt"])) for r in got) == [(1, 5), (1, 12), (2, 5), (2, 12)]
    env = json.loads(first.with_suffix(".env.json").read_text())
    assert len(env["commands"]) == 2 and env["torch"] == torch.__version__


def test_cli_profile_writes_csv_and_env(tmp_path, capsys):
    folder = write_config(tmp_path, "llama-mqa")
    code = cli.main(["profile", str(folder), "--device", "cpu", "--dtype", "fp32", "--batch", "1", "--prompt", "4",
                     "--output", "2", "--warmup", "0", "--out", str(tmp_path / "m"), "--no-progress", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 1 and out["by_status"] == {"ok": 1}
    assert (tmp_path / "m" / "llama-mqa.config.json").is_file()


def test_cli_profile_bad_batch_list_is_an_input_error(tmp_path, capsys):
    assert cli.main(["profile", "x", "--device", "cpu", "--batch", "1,a"]) == 2
    assert "batch" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_memory_counters(tmp_path):
    path = prun.run(request(tmp_path, "llama-gqa", device="cuda", dtype="bf16"))
    for r in rows(path):
        assert r["status"] == "ok"
        assert float(r["peak_allocated_bytes"]) >= int(r["param_bytes"]) + int(r["kv_bytes"])
        assert float(r["peak_reserved_bytes"]) >= float(r["peak_allocated_bytes"])
        assert float(r["nvml_used_bytes"]) > float(r["peak_reserved_bytes"]) * 0  # NVML answered
