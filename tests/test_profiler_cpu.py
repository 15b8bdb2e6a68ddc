"""The profiler on the CPU with tiny configs of every layer kind: the same code paths a GPU run takes.

Measured KV bytes (the cache tensors after prefill and after decoding) and parameter bytes must
equal the planner's prediction exactly; an out-of-memory point is a recorded row and the run goes
on; a rerun into the same folder measures only the points it lacks.
"""

import csv
import json

import pytest
import torch

from planner import validate
from profiler.cli import main as program  # the whole program: the core's commands and the profiler's
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
    code = program(["profile", str(folder), "--device", "cpu", "--dtype", "fp32", "--batch", "1", "--prompt", "4",
                     "--output", "2", "--warmup", "0", "--out", str(tmp_path / "m"), "--no-progress", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 1 and out["by_status"] == {"ok": 1}
    assert (tmp_path / "m" / "llama-mqa.config.json").is_file()


def test_cli_profile_bad_batch_list_is_an_input_error(tmp_path, capsys):
    assert program(["profile", "x", "--device", "cpu", "--batch", "1,a"]) == 2
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


def test_a_row_cut_short_is_measured_again_not_extended(tmp_path, capsys):
    """The review's case: a truncated last row was taken as measured and the next run glued its first
    row onto it (57 fields in a 40-column file). Now the cut row is dropped and re-measured."""
    req = request(tmp_path, "llama-gqa", batches=(1,), prompts=(5, 12))
    path = prun.run(req)
    whole = path.read_bytes()
    last = whole.rstrip().rfind(b"\n") + 1
    path.write_bytes(whole[: last + 30])  # the last row cut after 30 bytes, no line end
    assert prun.run(req) == path
    got = rows(path)
    assert sorted(int(r["prompt"]) for r in got) == [5, 12] and all(r["status"] == "ok" for r in got)
    assert all(None not in r and len(r) == len(prun.COLUMNS) for r in got)
    assert "dropped and that point measured again" in capsys.readouterr().err
    assert len(validate.validation_table(dirs=[path.parent], reference=False)) > 0


def test_a_damaged_measurement_file_stops_the_run_before_it_measures(tmp_path):
    path = prun.run(request(tmp_path, "llama-gqa", batches=(1,), prompts=(5,)))
    damaged = path.read_bytes() + b"ok,1,2,3\r\n"
    path.write_bytes(damaged)
    code = program(["profile", str(tmp_path / "configs" / "llama-gqa"), "--device", "cpu", "--dtype", "fp32",
                     "--batch", "2", "--prompt", "5", "--output", "2", "--warmup", "1", "--out", str(tmp_path / "out"),
                     "--no-progress"])
    assert code == 2 and path.read_bytes() == damaged


@pytest.mark.parametrize("error, oom", [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                  "tried to allocate 17592186044416 bytes. Error code 12 (Cannot allocate memory)"), True),
    (RuntimeError("MPS backend out of memory (MPS allocated: 1.00 GB)"), True),
    (MemoryError(), True),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("shape mismatch"), False),
])
def test_out_of_memory_is_recognised_on_every_device(error, oom):
    assert prun.is_oom(error) is oom


def test_a_real_cpu_allocation_failure_is_an_oom():
    try:
        torch.empty(2**50, dtype=torch.uint8)  # a petabyte: refused at once by the CPU allocator
    except Exception as e:  # noqa: BLE001
        assert prun.is_oom(e)
    else:
        pytest.skip("the allocator granted a petabyte")


def test_ctrl_c_exits_130_with_the_rows_so_far_saved(tmp_path, monkeypatch, capsys):
    real = prun.measure_point

    def interrupt_second(model, dev, vocab, batch, prompt, warmup, steps):
        if prompt == 12:
            raise KeyboardInterrupt
        return real(model, dev, vocab, batch, prompt, warmup, steps)

    monkeypatch.setattr(prun, "measure_point", interrupt_second)
    folder = write_config(tmp_path, "llama-mqa")
    code = program(["profile", str(folder), "--device", "cpu", "--dtype", "fp32", "--batch", "1", "--prompt", "5,12",
                     "--output", "2", "--warmup", "0", "--out", str(tmp_path / "m"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and "1 of 2 points saved" in err
    (csv_path,) = (tmp_path / "m").glob("llama-mqa_*.csv")
    assert [int(r["prompt"]) for r in rows(csv_path)] == [5]


def test_a_checkpoint_folder_is_profiled_with_its_weights(tmp_path):
    import transformers

    folder = tmp_path / "ckpt"
    conf = prun.hf_config(TINY["llama-gqa"])
    transformers.AutoModelForCausalLM.from_config(conf).save_pretrained(folder)
    cfg, name, checkpoint = prun.read_config(str(folder))
    assert name == "ckpt" and checkpoint == folder
    got = rows(prun.run(request(tmp_path, "llama-gqa", model=str(folder), batches=(1,), prompts=(5,))))
    assert [r["status"] for r in got] == ["ok"]


def test_the_profiler_reads_configs_through_the_planners_checks(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert program(["profile", str(bad), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith("error: config.json: ")
    zero = tmp_path / "zero.json"
    zero.write_text(json.dumps({**TINY["qwen3-moe"], "decoder_sparse_step": 0}))
    assert program(["profile", str(zero), "--device", "cpu"]) == 2
    assert "decoder_sparse_step" in capsys.readouterr().err
