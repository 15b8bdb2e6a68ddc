"""Public start-up logs (profiles/engine-logs) read back and reproduced.

* the parser recovers every figure a log prints, the settings it states, and its version;
* given the KV memory a log printed, the pool arithmetic gives the blocks / tokens it printed, exactly
  (or to the rounding of the printed GiB);
* every log whose config and GPU are bundled is predicted without error, line by line;
* bad logs (truncated, binary, not an engine's) exit 2 with the field named.
The KV-pool accuracy against these logs is a benchmark (benchmarks/bench_engine_logs.py), not a test.
"""

import json
import subprocess
import sys

import pytest

from planner import enginelog, logcheck, profiles
from planner.startup import kv_pool

LOGS = profiles.engine_logs()
NAMES = tuple(n for g in profiles.gpus().values() for n in g.nvml_names)
GIB = 2**30


@pytest.mark.parametrize("lid, text, meta", LOGS, ids=[x[0] for x in LOGS])
def test_every_printed_figure_is_parsed(lid, text, meta):
    log = enginelog.parse_log(text, NAMES)
    assert log.engine == meta["engine"]
    found = {v.key for v in log.logged}
    assert found & {"kv_cache_tokens", "gpu_blocks", "kv_tokens", "kv_cache_gib"}, "no KV-pool line parsed"
    for key, value in (meta.get("logged") or {}).items():
        if key in found:  # figures the source states only in prose are in the metadata, not the log
            assert log.value(key) == pytest.approx(value, rel=1e-9), key
    if meta.get("version") and log.version:
        assert log.version.split("+")[0].startswith(meta["version"].split("+")[0][:4])


def test_at_least_thirty_logs_with_sources():
    assert len(LOGS) >= 30
    for lid, _, meta in LOGS:
        assert meta.get("source") and meta.get("engine") in ("vllm", "sglang", "trtllm"), lid


CHECKS = [c for c in logcheck.committed_checks() if c[2] is not None]
# vLLM logs that print both the KV memory and the pool it made of it
BOTH = [c for c in CHECKS if c[2].log.engine == "vllm" and c[2].line("kv_cache_gib")
        and (c[2].line("kv_cache_tokens") or c[2].line("gpu_blocks"))]


@pytest.mark.parametrize("lid, meta, check", [c[:3] for c in BOTH], ids=[c[0] for c in BOTH])
def test_block_arithmetic_reproduces_the_printed_pool(lid, meta, check):
    """From the KV memory the log printed, vLLM's block rules give the blocks/tokens it printed."""
    budget = check.line("kv_cache_gib")
    pool = check.line("kv_cache_tokens") or check.line("gpu_blocks")
    m = check.startup
    era, _, _ = profiles.engine_table("vllm").resolve(m.version)
    from planner.memory import Deployment
    dep = Deployment(weights=check.settings.weights, kv_dtype=m.setting("kv_cache_dtype"), engine="paged",
                     tp=check.settings.tp, pp=check.settings.pp, block_size=m.block_size,
                     max_num_batched_tokens=m.setting("max_num_batched_tokens"), max_num_seqs=m.setting("max_num_seqs"))
    # the printed GiB is rounded to 0.01: the pool lies between the pools of budget -/+ 0.005 GiB
    lo = kv_pool(m_spec(check), dep, era, (budget.logged - 0.005) * GIB, m.max_model_len)
    hi = kv_pool(m_spec(check), dep, era, (budget.logged + 0.005) * GIB, m.max_model_len)
    key = "logged_tokens" if pool.key == "kv_cache_tokens" else "num_blocks"
    assert getattr(lo, key) <= pool.logged <= getattr(hi, key), (getattr(lo, key), pool.logged, getattr(hi, key))


def m_spec(check):
    return profiles.load_model(check.model)


def test_enough_logs_print_both_the_memory_and_the_pool():
    assert len(BOTH) >= 10


def test_every_checkable_log_is_predicted_line_by_line():
    rows = logcheck.pool_errors()
    assert len(rows) >= 15
    assert rows["predicted"].gt(0).all() and rows["logged"].gt(0).all()


def test_parser_takes_the_rank_that_decides_the_pool():
    text = ("(VllmWorkerProcess pid=1) INFO x [worker.py:1] model weights take 16.46GiB; non_torch_memory takes 5.68GiB; "
            "PyTorch activation peak memory takes 0.50GiB; the rest of the memory reserved for KV Cache is 110.52GiB.\n"
            "INFO x [worker.py:1] model weights take 16.46GiB; non_torch_memory takes 7.71GiB; "
            "PyTorch activation peak memory takes 1.70GiB; the rest of the memory reserved for KV Cache is 107.35GiB.\n"
            "INFO x [distributed_gpu_executor.py:1] # GPU blocks: 175884, # CPU blocks: 6553\n")
    log = enginelog.parse_log(text)
    assert log.value("kv_cache_gib") == 107.35 and log.value("non_torch_gib") == 7.71  # the driver's line
    assert log.value("gpu_blocks") == 175884


def test_parser_reads_wrapped_markdown_and_underscored_flags():
    text = ("```\nvllm serve --trust-remote-code --tensor_parallel_size 2 --gpu_memory_utilization=0.98  /m/Qwen2.5-14B\n```\n"
            "INFO 01-01 Initializing an LLM engine (v0.5.4) with config: model='/m/Qwen2.5-14B', dtype=torch.bfloat16, max_seq_le\n"
            "n=4096, tensor_parallel_size=2, kv_cache_dtype=auto\n"
            "- This PR: # GPU blocks: **20865**\n")
    log = enginelog.parse_log(text)
    assert log.setting("tp") == 2 and log.setting("gpu_memory_utilization") == 0.98
    assert log.setting("max_model_len") == 4096 and log.setting("dtype") == "bfloat16"
    assert log.version == "0.5.4" and log.value("gpu_blocks") == 20865 and log.model_id == "/m/Qwen2.5-14B"


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, text=True, input=stdin,
                          cwd=str(profiles.ROOT.parent), timeout=120)


def test_engine_log_cli_round_trip():
    lid = "vllm-0.17.1-llama-3.1-8b-instruct-a100-80gb-tp1"
    r = run("engine-log", f"profiles/engine-logs/vllm/{lid}.log", "--model", "Llama-3.1-8B", "--gpu", "A100-SXM-80GB",
            "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"] == "0.17.1" and {x["key"] for x in out["lines"]} >= {"weights_gib", "kv_cache_tokens"}
    assert out["disagreeing_term"]


@pytest.mark.parametrize("text, field", [
    ("hello world\n", "log"),                                                   # no engine line
    ("INFO vLLM API server version 0.8.5\nINFO Model loading took 14.99 GiB\n", "log"),  # truncated before the pool
    ("", "log"),
])
def test_bad_logs_exit_2_naming_the_field(text, field, tmp_path):
    f = tmp_path / "x.log"
    f.write_text(text)
    r = run("engine-log", str(f), "--model", "Llama-3.1-8B", "--gpu", "H100-SXM")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith(f"error: {field}")


def test_binary_file_is_refused(tmp_path):
    f = tmp_path / "x.log"
    f.write_bytes(b"\x00\x01\x02" * 100)
    r = run("engine-log", str(f))
    assert r.returncode == 2 and "binary" in r.stderr


def test_unknown_model_names_the_closest_bundled_ones(tmp_path):
    f = tmp_path / "x.log"
    f.write_text("$ vllm serve meta-llama/Meta-Llama-3-8B\nINFO GPU KV cache size: 100,000 tokens\n")
    r = run("engine-log", str(f), "--gpu", "H100-SXM")
    assert r.returncode == 2 and "not bundled" in r.stderr and "--model" in r.stderr


def test_saved_log_calibrates_capacity(tmp_path, monkeypatch):
    from planner import api
    monkeypatch.setattr(profiles, "engine_calibration_path", lambda: tmp_path / "engine_calibration.json")
    profiles.engine_calibrations.cache_clear()
    lid, meta, check = next(c[:3] for c in CHECKS if c[0] == "vllm-0.17.1-llama-3.1-8b-instruct-a100-80gb-tp1")
    before = api.capacity("Llama-3.1-8B", "A100-SXM-80GB", engine_version="0.17.1", max_model_len=32768,
                          gpu_memory_utilization=check.settings.gpu_memory_utilization)
    logcheck.save_calibration(check, "the-log.txt")
    after = api.capacity("Llama-3.1-8B", "A100-SXM-80GB", engine_version="0.17.1", max_model_len=32768,
                         gpu_memory_utilization=check.settings.gpu_memory_utilization)
    profiles.engine_calibrations.cache_clear()
    assert "the-log.txt" in after["calibration"] and before["calibration"].startswith("none")
    # the same model and settings: the calibrated budget is the logged one (55.79 GiB)
    assert after["kv_budget_bytes_per_gpu"] / GIB == pytest.approx(check.line("kv_cache_gib").logged, abs=1e-6)


TRT_LOG = "trtllm-1.3.0rc10-deepseek-r1-0528-nvfp4-b200-tp4-ep4"


def test_tensorrt_llm_log_is_read_without_its_temporary_cache():
    text = (profiles.ROOT / "engine-logs" / "trtllm" / f"{TRT_LOG}.log").read_text()
    log = enginelog.parse_log(text)
    assert log.engine == "trtllm" and log.version == "1.3.0rc10"
    # the LLM Args dump (space-separated, KvCacheConfig nested) and the runtime line
    assert log.setting("tp") == 4 and log.setting("free_gpu_memory_fraction") == 0.8
    assert log.setting("kv_cache_dtype") == "fp8" and log.setting("max_num_seqs") == 2048
    assert log.setting("max_num_batched_tokens") == 8192 and log.setting("max_model_len") == 8192
    # the first 'Allocated 2.14 GiB ... (65536)' is the profiling pass's cache: only the final pool counts
    assert log.value("kv_cache_tokens") == 1809952 and log.value("kv_pool_gib") == 59.23
    assert log.value("weights_gib") == 93.90 and log.value("kv_cache_gib") == 59.23 and log.value("peak_gib") == 106.46


def test_tensorrt_llm_log_is_predicted_line_by_line():
    lid, meta, c = next(x[:3] for x in CHECKS if x[0] == TRT_LOG)
    # (178.35 GiB device - 89.32 nvfp4 weights - 7.2 outside torch (TP 4) - 1.50 dummy pass) x 0.8 = 64.26 GiB
    kv = c.line("kv_cache_gib")
    assert kv.logged == 59.23 and kv.predicted == pytest.approx(64.26, abs=0.01)
    # the rule with the printed peak and temporary cache: (178.35 - 106.46 + 2.14) x 0.8 = 59.22 GiB, as logged
    assert (c.line("total_gpu_memory_gib").logged - c.line("peak_gib").logged + 2.14) * 0.8 == pytest.approx(59.23, abs=0.02)
    # 1.3's temporary cache: max_batch_size 2,048 x 32 tokens x 35,136 B = 2.14 GiB, inside the memory outside torch
    tmp = next(t for t in c.startup.terms if t.name == "estimation_kv_cache")
    assert tmp.bytes == 2048 * 32 * 35136 and not tmp.counted
    assert c.pool.key == "kv_cache_tokens" and c.pool.error_pct == pytest.approx(8.5, abs=0.1)


def test_engine_log_cli_reads_a_tensorrt_llm_log():
    r = run("engine-log", f"profiles/engine-logs/trtllm/{TRT_LOG}.log", "--model", "DeepSeek-R1", "--gpu", "B200",
            "--weights", "nvfp4", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["engine"] == "trtllm" and {x["key"] for x in out["lines"]} >= {"weights_gib", "peak_gib", "kv_cache_gib"}
    r = run("engine-log", f"profiles/engine-logs/trtllm/{TRT_LOG}.log", "--model", "DeepSeek-R1", "--gpu", "B200",
            "--weights", "no-such-format")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_tensorrt_llm_excerpt_without_profiling_lines_takes_the_last_allocation():
    # two 'Allocated' lines and no profiling line (a trimmed paste): the first is the temporary cache
    text = ("[TensorRT-LLM] TensorRT LLM version: 1.3.0rc10\n"
            "[TensorRT-LLM][INFO] [MemUsageChange] Allocated 2.14 GiB for max tokens in paged KV cache (65536).\n"
            "[TensorRT-LLM][INFO] [MemUsageChange] Allocated 59.23 GiB for max tokens in paged KV cache (1809952).\n")
    log = enginelog.parse_log(text)
    assert log.engine == "trtllm" and log.value("kv_cache_tokens") == 1809952


def test_a_saved_tensorrt_llm_log_calibrates_only_its_own_settings(tmp_path, monkeypatch):
    from planner import api
    monkeypatch.setattr(profiles, "engine_calibration_path", lambda: tmp_path / "engine_calibration.json")
    profiles.engine_calibrations.cache_clear()
    lid, meta, check = next(c[:3] for c in CHECKS if c[0] == TRT_LOG)
    logcheck.save_calibration(check, "trt.log")
    kw = dict(tp=4, weights="nvfp4", kv_dtype="fp8", engine="trtllm", engine_version="1.3.0rc10",
              max_num_batched_tokens=8192, max_num_seqs=2048, max_model_len=8192)
    same = api.capacity("DeepSeek-R1", "B200", free_gpu_memory_fraction=0.8, **kw)
    other = api.capacity("DeepSeek-R1", "B200", free_gpu_memory_fraction=0.5, **kw)
    profiles.engine_calibrations.cache_clear()
    # the same settings: the budget the log printed (59.23 GiB); another fraction: only the non-torch part
    assert "this model and settings" in same["calibration"]
    assert same["kv_budget_bytes_per_gpu"] / GIB == pytest.approx(59.23, abs=1e-6)
    assert "non-torch" in other["calibration"]
