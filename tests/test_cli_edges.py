"""The command line at its edges: one-line errors, pipes, Ctrl-C, limits on every count, model names."""

import io
import json
import sys

import pytest

from planner import api, cli, profiles, slo, sweep
from planner.errors import PlannerInputError

pytestmark = pytest.mark.skipif("Llama-3.1-8B" not in profiles.model_names() or "H100-SXM" not in profiles.gpus(),
                                reason="needs the bundled Llama-3.1-8B and H100-SXM")
SLO = ["slo", "Llama-3.1-8B", "--gpu", "H100-SXM", "--rate", "1", "--prompt", "64", "--output", "8", "--ttft", "1"]


def one_line_error(capsys, field: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {field}"), err
    return err


@pytest.mark.parametrize("args, field", [
    (["capacity", "Llama-3.1-8B", "--gpu", "H100-SXM", "--max-model-len", "0"], "argument --max-model-len"),
    ([*SLO, "--sim-requests", "100000000"], "sim_requests"),
    ([*SLO, "--sim-requests", "-5"], "sim_requests"),
    ([*SLO, "--simulate-top", "0"], "simulate_top"),
    ([*SLO, "--max-batch", "0"], "max_batch"),
    (["sweep", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", ",".join(map(str, range(1, 3001))),
      "--prompt", ",".join(map(str, range(1, 3001))), "--output", "1,2"], "sweep"),
    (["sweep", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", "1", "--prompt", "1", "--output", "1", "--tp", "1,-3"],
     "argument --tp"),
])
def test_limits_are_refused_with_the_limit_named(capsys, args, field):
    """0 never means the default, and a count too large to finish is refused before any work."""
    assert cli.main(args) == 2
    err = one_line_error(capsys, field)
    assert any(ch.isdigit() for ch in err)


def test_limits_live_in_the_core_too():
    with pytest.raises(PlannerInputError, match="budget"):
        slo.Candidates(gpus=("H100-SXM",), simulate_top=20, sim_requests=10_000)
    with pytest.raises(PlannerInputError, match="combinations"):
        slo.Candidates(gpus=("H100-SXM",) * 21, tps=tuple(range(1, 11)), kv_dtypes=("bf16",) * 10)
    with pytest.raises(PlannerInputError, match="rows"):
        sweep.sweep("Llama-3.1-8B", "H100-SXM", range(1, 2001), range(1, 2001), [1, 2])


class _ClosedPipe(io.StringIO):
    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_is_not_a_traceback(monkeypatch):
    """`python -m planner list | head -1`: the reader went away; exit quietly."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["list"]) == 0


def test_ctrl_c_is_exit_130_and_one_line(monkeypatch, capsys):
    def interrupted(a):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "list", interrupted)
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "error: interrupted (Ctrl-C)\n"


def test_two_configs_in_one_folder_keep_their_own_names(tmp_path, capsys):
    """The review's case: a.json and b.json in configs/ were both called 'configs' and merged."""
    src = (profiles.ROOT / "models" / "Llama-3.1-8B" / "config.json").read_text()
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "a.json").write_text(src)
    (folder / "b.json").write_text(src)
    out = tmp_path / "s.csv"
    assert cli.main(["sweep", f"{folder / 'a.json'},{folder / 'b.json'},Llama-3.1-8B", "--gpu", "H100-SXM",
                     "--batch", "1,8", "--prompt", "128", "--output", "16", "--csv", str(out), "--frontier"]) == 0
    import pandas as pd

    df = pd.read_csv(out)
    assert sorted(df["model"].unique()) == ["Llama-3.1-8B", "a", "b"]
    assert (df.groupby("model").size() == 2).all(), "each model keeps its own frontier"


def test_a_config_is_named_by_its_file_its_folder_or_its_name_or_path(tmp_path):
    cfg = {"_name_or_path": "org/My-Model"}
    assert profiles.model_name(tmp_path / "x" / "tuned.json", cfg) == "tuned"
    assert profiles.model_name(tmp_path / "Qwen3-8B" / "config.json", cfg) == "Qwen3-8B"
    snapshot = tmp_path / "snapshots" / ("0123456789abcdef" * 3)[:40] / "config.json"
    assert profiles.model_name(snapshot, cfg) == "My-Model"
    assert profiles.model_name("config.json", cfg, on_disk=False) == "My-Model"
    assert profiles.model_name("[x](evil.example).json") == "x-evil.example"


def test_same_names_in_one_request_are_numbered():
    a = profiles.load_model("Llama-3.1-8B")
    names = [s.name for s in profiles.unique_names([a, a, profiles.load_model("Qwen3-8B"), a])]
    assert names == ["Llama-3.1-8B", "Llama-3.1-8B #2", "Qwen3-8B", "Llama-3.1-8B #3"]


@pytest.mark.parametrize("content", [b"\x00\xff\x10binary", b"", b"just,one,row\n", b"status,model,batch\nok"])
def test_validate_on_a_binary_or_column_less_file_exits_2(tmp_path, capsys, content):
    f = tmp_path / "m.csv"
    f.write_bytes(content)
    assert cli.main(["validate", str(f), "--no-reference"]) == 2
    one_line_error(capsys, "")


def test_json_output_has_no_nan(capsys):
    assert cli.main([*SLO, "--sim-requests", "50", "--simulate-top", "1", "--json"]) == 0
    json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


def test_plan_prints_its_answer_first_in_units_a_person_reads(capsys):
    from planner import cli
    assert cli.main(["plan", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", "8", "--prompt", "512", "--output", "64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "fits: yes"
    assert out[1].startswith("TTFT") and " ms mean, p90 " in out[1] and "real runs land" in out[1]
    assert any(line.startswith("cost ") and "per 1M output tokens" in line for line in out[:10])
    # a plan that cannot run says why and shows no latency
    assert cli.main(["plan", "Llama-3.1-70B", "--gpu", "L4", "--batch", "8", "--prompt", "512", "--output", "64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("fits: NO - needs ") and not out[1].startswith("TTFT")
    head = out[:out.index("")]
    assert head == [out[0]] and " ms" not in "\n".join(head)   # not one request fits: no latency at all


def test_a_band_from_other_gpus_and_the_tables_says_so_when_the_plan_is_on_the_roofline(capsys):
    from planner import cli
    # on an H100 the Llama's passes come from the measured tables the band was built with: no caveat
    assert cli.main(["plan", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", "8", "--prompt", "512", "--output", "64"]) == 0
    ttft = capsys.readouterr().out.splitlines()[1]
    assert ttft.endswith("held-out runs)") and "roofline" not in ttft
    # on an MI300X (no tables, no published run in the band) both are said, once, on the TTFT line
    assert cli.main(["plan", "Qwen3-30B-A3B", "--gpu", "MI300X", "--batch", "8", "--prompt", "512", "--output", "64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "none on MI300X" in out[1] and "timed on the roofline" in out[1]
    assert out[2].startswith("TPOT") and "roofline" not in out[2]


def test_plan_over_the_kv_pool_shows_the_queued_latency_as_the_dashboard_does(capsys):
    """PlanResult.runs: 64 requests of 8,192 + 1,024 tokens on one H100 (50 fit at a time): the engine queues the
    rest, so the CLI shows the simulated latency with a note, and the throughput and cost that queue sustains."""
    from planner import cli
    from planner.request import build

    argv = ["plan", "Llama-3.1-8B", "--gpu", "H100-SXM", "--batch", "64", "--prompt", "8192", "--output", "1024"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    head = out[:out.index("")]
    r = api.plan_request(build("Llama-3.1-8B", "H100-SXM", 64, 8192, 1024))
    assert not r.fits and r.runs and 0 < r.memory.max_batch < 64
    assert head[0].startswith("fits: NO - needs ")
    assert head[1].startswith("queued") and "requests queue because the batch of 64 exceeds the KV pool" in head[1]
    assert f"holds {r.memory.max_batch:,} at a time" in head[1]
    assert head[2] == f"TTFT       {r.latency.ttft_s * 1e3:,.1f} ms mean, p90 {r.latency.percentile('ttft', 90) * 1e3:,.1f} ms"
    assert head[3].startswith(f"TPOT       {r.latency.tpot_s * 1e3:,.1f} ms mean")
    thr = next(line for line in head if line.startswith("throughput"))
    # 64 clients over the simulated e2e (plus vLLM's return gap): the queue's throughput, said to be one
    assert f"{r.throughput.deployment_output_tokens_per_s:,.0f} output tokens/s" in thr
    assert f"holds {r.memory.max_batch:,} at a time and queues the rest" in thr
    assert any(line.startswith("cost") and "per 1M output tokens" in line for line in head)
    assert any(line.startswith("runs ") and line.split()[-1] == "True" for line in out)   # the flag, in the listing


def test_values_are_printed_in_their_units():
    from planner.cli import _human
    assert _human("ttft_s", 0.1909) == "190.90 ms"          # 0.1909 s x 1000
    assert _human("e2e_latency_s", 12.5) == "12.50 s"        # 10 s and more stay in seconds
    assert _human("decode_achieved_bytes_per_s", 2.613e12) == "2,613.0 GB/s"
    assert _human("prefill_flops", 1.5054e13) == "15.054 TFLOP"
    assert _human("cost_usd_per_1m_output_tokens", 0.24163) == "$0.2416"
    assert _human("kv_cache_bytes_per_gpu", 5 * 2**30) == "5.00 GiB  (5,368,709,120 B)"
    assert _human("batch", 32) == "32" and _human("fits", True) == "True"


def test_a_gpu_without_a_price_has_no_cost_not_a_cost_of_zero(capsys):
    # GB200's profile carries no on-demand price (its notes say why): the plan says so, and its JSON has null
    assert not profiles.gpu("GB200").price_usd_per_hour
    assert cli.main(["plan", "Llama-3.1-8B", "--gpu", "GB200", "--batch", "4", "--prompt", "512", "--output", "64"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("cost"))
    assert "GB200 has no price in its profile" in line and "$0.000" not in out
    assert cli.main(["plan", "Llama-3.1-8B", "--gpu", "GB200", "--batch", "4", "--prompt", "512", "--output", "64",
                     "--json"]) == 0
    d = json.loads(capsys.readouterr().out)  # strict JSON: no NaN token
    assert d["usd_per_hour"] == 0.0
    assert d["cost_usd_per_1m_output_tokens"] is None and d["cost_usd_per_1m_tokens"] is None
    assert d["output_tokens_per_s"] > 0
