"""Engine commands: the exact argv for known plans, refusals, and the CLI's exit code."""

import pytest

from planner import cli
from planner.commands import FLAGS, commands, flag
from planner.engines import Version
from planner.errors import PlannerInputError
from planner.memory import Deployment

L8 = "Llama-3.1-8B"


def test_vllm_llama_8b_tp2_fp8_kv_exact_argv():
    # vLLM 0.33.0 on H100-SXM: --gpu-memory-utilization default 0.92 (vllm/config/cache.py l.215), token budget
    # 8192 (the version's default for the GPU, planner/deploy.py); max_model_len = 2,000 + 500 = 2,500;
    # 32 clients x 20 rounds = 640 prompts (planner/traffic.py ROUNDS)
    c = commands(L8, "H100-SXM", Deployment(tp=2, kv_dtype="fp8", server="vllm", server_version="0.33.0"),
                 2000, 500, 32)
    assert c.serve.argv == ("vllm", "serve", "meta-llama/Llama-3.1-8B", "--tensor-parallel-size", "2",
                            "--max-model-len", "2500", "--gpu-memory-utilization", "0.92", "--max-num-seqs", "32",
                            "--max-num-batched-tokens", "8192", "--kv-cache-dtype", "fp8")
    assert c.serve.notes == ()
    assert c.bench.shell == ("vllm bench serve --model meta-llama/Llama-3.1-8B --dataset-name random "
                             "--random-input-len 2000 --random-output-len 500 --max-concurrency 32 "
                             "--num-prompts 640 --ignore-eos")


@pytest.mark.parametrize("version,on,written", [
    ("0.12.0", True, "--async-scheduling"),      # opt-in before 0.14.0
    ("0.18.0", False, "--no-async-scheduling"),  # on by default from 0.14.0: turning it off is the flag
    ("0.12.0", False, None), ("0.18.0", True, None), ("0.18.0", None, None),  # the release's default: no flag
])
def test_async_scheduling_is_written_where_it_differs_from_the_release_default(version, on, written):
    c = commands(L8, "H100-SXM", Deployment(server="vllm", server_version=version, async_scheduling=on), 1024, 256, 8)
    flags = [a for a in c.serve.argv if "async-scheduling" in a]
    assert flags == ([written] if written else [])
    assert c.serve.notes == ()


def test_open_loop_and_max_tokens():
    # Poisson arrivals: --request-rate, 400 requests; the cap shortens outputs and sets max_model_len 2,000 + 300
    c = commands(L8, "H100-SXM", Deployment(server="vllm"), 2000, 500, 16, rate=4.0, max_tokens=300)
    assert "--max-model-len" in c.serve.argv and c.serve.argv[c.serve.argv.index("--max-model-len") + 1] == "2300"
    a = c.bench.argv
    assert a[a.index("--request-rate") + 1] == "4" and a[a.index("--random-output-len") + 1] == "300"
    assert "--max-concurrency" not in a and a[a.index("--num-prompts") + 1] == "400"


def test_sglang_flags_and_fixed_lengths():
    c = commands(L8, "H100-SXM", Deployment(tp=2, kv_dtype="fp8", weights="fp8", server="sglang",
                                            server_version="0.5.23", cuda_graph_sizes=(1, 2, 4, 8)), 1024, 256, 8)
    a = c.serve.argv
    assert a[:5] == ("python", "-m", "sglang.launch_server", "--model-path", "meta-llama/Llama-3.1-8B")
    for f, v in (("--tp-size", "2"), ("--context-length", "1280"), ("--max-running-requests", "8"),
                 ("--kv-cache-dtype", "fp8_e4m3"), ("--quantization", "fp8"), ("--chunked-prefill-size", "8192")):
        assert a[a.index(f) + 1] == v
    assert a[a.index("--cuda-graph-bs-decode") + 1:] == ("1", "2", "4", "8")   # renamed from --cuda-graph-bs
    assert "--mem-fraction-static" in a
    b = c.bench.argv  # sglang's random lengths come from [len x ratio, len]: ratio 1 keeps them fixed
    assert b[b.index("--random-range-ratio") + 1] == "1" and b[b.index("--max-concurrency") + 1] == "8"
    old = commands(L8, "H100-SXM", Deployment(server="sglang", server_version="0.5.6", cuda_graph_sizes=(4,)),
                   1024, 256, 8)
    assert "--cuda-graph-bs" in old.serve.argv


def test_trtllm_serve():
    c = commands(L8, "H100-SXM", Deployment(tp=2, kv_dtype="fp8", server="trtllm"), 1024, 256, 64)
    assert c.serve.argv == ("trtllm-serve", "meta-llama/Llama-3.1-8B", "--backend", "pytorch", "--tp_size", "2",
                            "--max_batch_size", "64", "--max_num_tokens", "8192", "--max_seq_len", "1280",
                            "--kv_cache_free_gpu_memory_fraction", "0.9")
    assert any("kv_cache_config" in n for n in c.serve.notes)


def test_a_quantized_format_without_a_flag_is_a_note():
    c = commands(L8, "H100-SXM", Deployment(weights="awq-4bit-g128", server="vllm"), 1024, 256, 8)
    assert "--quantization" not in c.serve.argv
    assert any("pre-quantized awq-4bit-g128 checkpoint" in n for n in c.serve.notes)


@pytest.mark.parametrize(("dep", "field", "words"), [
    (Deployment(engine="transformers"), "engine", "no server command"),
    (Deployment(weights="Q4_K_M", server="vllm"), "weights", "GGUF"),
    (Deployment(kv_dtype="int8", server="vllm"), "kv_dtype", "int8"),
    (Deployment(weights="bnb-nf4", server="vllm", server_version="0.33.0"), "bitsandbytes", "no bitsandbytes"),
    (Deployment(kv_dtype="fp16", server="vllm", server_version="0.12.0"), "kv_fp16", "no float16"),
])
def test_refusals_name_the_field_and_the_fix(dep, field, words):
    with pytest.raises(PlannerInputError) as e:
        commands(L8, "H100-SXM", dep, 1024, 256, 8)
    assert e.value.field == field and words in str(e.value) and e.value.fix


def test_in_flight_bitsandbytes_on_an_older_vllm():
    c = commands(L8, "H100-SXM", Deployment(weights="bnb-nf4", server="vllm", server_version="0.11.0"), 1024, 256, 8)
    a = c.serve.argv
    assert a[a.index("--quantization") + 1] == "bitsandbytes"


def test_flag_table_rows_have_sources_and_unread_releases_get_a_note():
    assert all(f.source and Version.parse(f.since) <= Version.parse(f.newest) for f in FLAGS)
    notes: list[str] = []
    assert flag("vllm", "tp", "0.6.0", notes) == "--tensor-parallel-size" and "check --help" in notes[0]


def test_cli_prints_both_commands_and_exits_2_on_bad_input(capsys):
    argv = ["command", L8, "--gpu", "H100-SXM", "--tp", "2", "--batch", "32", "--prompt", "2000", "--output", "500",
            "--kv-dtype", "fp8"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "vllm serve meta-llama/Llama-3.1-8B --tensor-parallel-size 2" in out and "vllm bench serve" in out
    for bad in (["--engine", "transformers"], ["--weights", "Q4_K_M"], ["--batch", "0"], ["--kv-dtype", "int4"]):
        assert cli.main(argv + bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_local_config_serves_its_folder(tmp_path):
    # a config.json given by path: the engine loads the checkpoint folder it sits in, and the note says so;
    # a folder given as such is used as it is
    import json

    from planner import profiles
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(profiles.model_config("Llama-3.1-8B")))
    for given in (folder / "config.json", folder):
        c = commands(str(given), "H100-SXM", Deployment(server="vllm"), 1000, 100, 8)
        assert c.serve.argv[:3] == ("vllm", "serve", str(folder)), c.serve.argv[:3]
    assert any("folder of the config you gave" in n for n in commands(str(folder / "config.json"), "H100-SXM",
               Deployment(server="vllm"), 1000, 100, 8).serve.notes)
