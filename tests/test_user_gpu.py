"""A user-defined GPU: --gpu-file (the schema of profiles/gpus/*.json) or the --gpu-* figures, marked
user-defined, every bad figure refused with exit 2 and one line naming it."""

from __future__ import annotations

import json
import math

import pytest

from planner import api, cli, profiles
from planner.errors import PlannerInputError
from planner.gpus import GpuSpec, user_gpu

H100 = json.loads((profiles.ROOT / "gpus" / "H100-SXM.json").read_text())
PLAN = ["--batch", "8", "--prompt", "512", "--output", "64", "--json"]
FLAGS = ["--gpu-memory-gib", "80", "--gpu-bandwidth-tbs", "3.35", "--gpu-bf16-tflops", "989.5"]


def write(tmp_path, d, name="my_gpu.json"):
    p = tmp_path / name
    p.write_text(d if isinstance(d, str) else json.dumps(d))
    return str(p)


def run(capsys, *argv) -> tuple[int, dict | str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 and "--json" in argv else out.err)


def test_a_copy_of_a_bundled_profile_plans_its_memory_exactly_like_it(tmp_path, capsys):
    path = write(tmp_path, {**H100, "id": "my-h100"})
    code, mine = run(capsys, "plan", "Llama-3.1-8B", "--gpu-file", path, *PLAN)
    assert code == 0 and mine["gpu"] == "my-h100"
    _, ref = run(capsys, "plan", "Llama-3.1-8B", "--gpu", "H100-SXM", *PLAN)
    for k in ("memory_total_bytes_per_gpu", "capacity_bytes_per_gpu", "max_batch", "usd_per_hour"):
        assert mine[k] == pytest.approx(ref[k]), k
    # the calibrations and measured operator tables belong to the bundled id: a copy runs on the datasheet
    assert mine["provenance"] == "datasheet"
    g = profiles.gpu("my-h100")
    assert g.user_defined and g.memory_source == "measured (CUDA total)"  # its measured figures are kept


def test_the_flags_build_a_user_defined_gpu(capsys):
    code, out = run(capsys, "fit", "Llama-3.1-8B", *FLAGS, "--gpu-fp8-tflops", "1979", "--gpu-price", "2.5",
                    "--batch", "8", "--prompt", "512", "--json")
    assert code == 0
    g = profiles.gpu("user-gpu")
    # 80 GiB = 80 x 2^30 B; 3.35 TB/s = 3.35e12 B/s; 989.5 TFLOPS = 9.895e14 FLOP/s; fp16 = bf16
    assert g.total_memory_bytes == 80 * 2**30 and g.memory_bandwidth_bytes_per_s == 3.35e12
    assert g.flops("bf16") == g.flops("fp16") == 9.895e14 and g.flops("fp8") == 1.979e15
    assert g.price_usd_per_hour == 2.5 and g.user_defined and g.memory_source == "user-defined"
    assert all(src == "user-defined (--gpu-*)" for _, src in g.sources)
    assert out["capacity_bytes"] == pytest.approx(api.fit("Llama-3.1-8B", g, 8, 512)["capacity_bytes"])


def test_without_fp8_the_fp8_peak_falls_back_to_bf16():
    g = user_gpu(24, 1.0, 165.0)
    assert g.flops("fp8") == 165e12 and not g.has_native("fp8") and g.price_usd_per_hour == 0.0


def test_sweep_and_slo_take_it_as_one_more_candidate(tmp_path, capsys):
    path = write(tmp_path, {**H100, "id": "my-h100"})
    code, out = run(capsys, "sweep", "Llama-3.1-8B", "--gpu", "A100-SXM-80GB", "--gpu-file", path, "--batch", "1,8",
                    "--prompt", "128", "--output", "16", "--csv", str(tmp_path / "s.csv"), "--json")
    assert code == 0 and out["rows"] == 4
    assert "my-h100" in (tmp_path / "s.csv").read_text()
    code, out = run(capsys, "slo", "Llama-3.1-8B", *FLAGS, "--rate", "1", "--prompt", "128", "--output", "16",
                    "--ttft", "2", "--sim-requests", "50", "--json")
    assert code == 0 and {r["gpu"] for r in out} == {"user-gpu"}


@pytest.mark.parametrize("flag, value, says", [
    ("--gpu-memory-gib", "-80", "positive finite"),
    ("--gpu-memory-gib", "nan", "positive finite"),
    ("--gpu-memory-gib", "inf", "positive finite"),
    ("--gpu-memory-gib", "20000", "below 10 TB"),          # 20,000 GiB = 21.5 TB
    ("--gpu-bandwidth-tbs", "abc", "must be a number"),
    ("--gpu-bandwidth-tbs", "5000", "at most 1,000 TB/s"),
    ("--gpu-bf16-tflops", "0", "positive finite"),
    ("--gpu-fp8-tflops", "2e6", "at most 1,000,000 TFLOPS"),
    ("--gpu-price", "-1", "positive finite"),
])
def test_bad_flags_exit_2_naming_the_flag(capsys, flag, value, says):
    args = dict(zip(FLAGS[::2], FLAGS[1::2], strict=True)) | {flag: value}
    code, err = run(capsys, "plan", "Llama-3.1-8B", *sum(([k, v] for k, v in args.items()), []), *PLAN)
    assert code == 2 and err.count("\n") == 1 and f"argument {flag}" in err and says in err


@pytest.mark.parametrize("argv, says", [
    (["--gpu-memory-gib", "80"], "--gpu-bandwidth-tbs: is needed to define a GPU"),
    ([*FLAGS, "--gpu", "H100-SXM"], "both --gpu H100-SXM and a user-defined GPU"),
    ([], "gpu: no GPU given"),
])
def test_incomplete_or_conflicting_gpus_exit_2(capsys, argv, says):
    code, err = run(capsys, "plan", "Llama-3.1-8B", *argv, *PLAN)
    assert code == 2 and says in err and err.count("\n") == 1


def _with(path: tuple[str, ...], value):
    d = json.loads(json.dumps({**H100, "id": "my-gpu"}))
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize("doc, field", [
    (_with(("datasheet", "memory_bytes", "value"), "fast"), "memory_bytes"),
    (_with(("datasheet", "memory_bytes", "value"), -8e10), "memory_bytes"),
    (_with(("datasheet", "memory_bytes", "value"), 2e13), "memory_bytes"),          # 20 TB
    (_with(("datasheet", "memory_bytes", "value"), True), "memory_bytes"),
    (_with(("datasheet", "memory_bytes", "source"), ""), "memory_bytes"),
    (_with(("datasheet", "memory_bytes"), KeyError), "memory_bytes"),
    (_with(("datasheet", "memory_bandwidth_bytes_per_s", "value"), 5e15), "memory_bandwidth"),
    (_with(("datasheet", "peak_flops_dense", "bf16", "value"), 0), "peak_flops_dense.bf16"),
    (_with(("datasheet", "peak_flops_dense", "fp6"), {"value": 1e15, "source": "x"}), "peak_flops_dense"),
    (_with(("datasheet", "peak_flops_dense"), {}), "gpu-file"),
    (_with(("datasheet", "interconnect", "bandwidth_bytes_per_s", "value"), "x"), "interconnect"),
    (_with(("price_usd_per_gpu_hour", "value"), 1e6), "price"),
    (_with(("measured", "cuda_total_memory_bytes", "value"), -1), "cuda_total"),
    (_with(("id",), "../../etc"), "id"),
    (_with(("id",), "H100-SXM"), "gpu id"),
    (_with(("nvml_names",), "NVIDIA H100"), "nvml_names"),
    (_with(("unified_memory",), "yes"), "unified_memory"),
    ([1, 2], "gpu-file"),
])
def test_a_bad_gpu_file_exits_2_naming_the_field(tmp_path, capsys, doc, field):
    code, err = run(capsys, "plan", "Llama-3.1-8B", "--gpu-file", write(tmp_path, doc), *PLAN)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"error: {field}" in err or f"my_gpu.json:{field}" in err, err


@pytest.mark.parametrize("text, says", [
    ('{"id": "x", "datasheet": {"memory_bytes": {"value": Infinity, "source": "s"}}}', "positive finite"),
    ('{"id": "x", "datasheet": {"memory_bytes": {"value": NaN, "source": "s"}}}', "positive finite"),
    ("{not json", "not valid JSON"),
])
def test_json_that_is_not_a_gpu_exits_2(tmp_path, capsys, text, says):
    code, err = run(capsys, "plan", "Llama-3.1-8B", "--gpu-file", write(tmp_path, text), *PLAN)
    assert code == 2 and says in err and err.count("\n") == 1


def test_a_missing_gpu_file_exits_2(tmp_path, capsys):
    code, err = run(capsys, "plan", "Llama-3.1-8B", "--gpu-file", str(tmp_path / "none.json"), *PLAN)
    assert code == 2 and "does not exist" in err


def test_every_bundled_profile_passes_the_stricter_reader():
    for p in sorted((profiles.ROOT / "gpus").glob("*.json")):
        g = GpuSpec.from_profile(json.loads(p.read_text()))
        assert math.isfinite(g.total_memory_bytes) and not g.user_defined


def test_a_bundled_id_cannot_be_taken():
    with pytest.raises(PlannerInputError, match="is a bundled GPU"):
        profiles.register_gpu(user_gpu(80, 3.35, 989, gpu_id="H100-SXM"))
