"""Fuzz the planner's command line: every bundled config with one field changed at a time, and every
number a user can type into a command, run in-process through ``planner.cli.main``. With
``--door dashboard``: the same configs through the dashboard's upload path (``core.check_upload``,
then the plan page's ``api.plan`` and ``api.fit``) and hostile values in every query parameter.

A run passes when it exits 0 with finite, non-negative figures (signed ones like a headroom aside)
or exits 2 with one line that names a field (``error: FIELD: problem (fix)``). Anything else is
counted: a traceback, a hang (over ``--timeout`` seconds), another exit code, a multi-line or
field-less error, a negative or NaN figure.

    python scripts/fuzz_cli.py --runs 21000 --jobs 2        # prints the counts, exit 1 on any failure
    python scripts/fuzz_cli.py --door dashboard --runs 20000 --jobs 2

tests/test_fuzz_cli.py runs a small fixed sample of the same cases in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NAN, INF = float("nan"), float("inf")
# the values the reliability review put into every field, one at a time
VALUES = (0, -1, 1.5, 1e308, 10**40, 2**63, NAN, INF, -INF, "64", "abc", True, None, [], {})
# keys the parser reads that most configs do not carry: fuzzed too, so that an absent key's default path
# and its given path are both tried
EXTRA_KEYS = (
    "head_dim", "num_key_value_heads", "sliding_window", "max_position_embeddings", "layer_types",
    "num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
    "n_shared_experts", "shared_expert_intermediate_size", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim",
    "qk_nope_head_dim", "v_head_dim", "decoder_sparse_step", "mlp_only_layers", "first_k_dense_replace",
    "moe_layer_freq", "sliding_window_pattern", "use_sliding_window", "max_window_layers",
    "tie_word_embeddings", "attention_bias", "mlp_bias", "quantization_config", "text_config", "architectures",
    "model_type", "_name_or_path",
    # read since the parser follows transformers' classes (planner/parse.py, profiles/model_families.json)
    "hybrid_override_pattern", "attention_chunk_size", "interleave_moe_layer_step", "num_kv_shared_layers",
    "index_topk", "linear_num_key_heads", "global_head_dim", "attention_k_eq_v", "mamba_num_heads", "top_k_experts",
    "moe_latent_size", "vision_config", "full_attention_interval", "mlp_layer_types",
)
GPU = "H100-SXM"
# the commands a config goes through, with sizes small enough for thousands of runs
CONFIG_COMMANDS = {
    "inspect": ["inspect", "{m}", "--json"],
    "capacity": ["capacity", "{m}", "--gpu", GPU, "--json", "--max-model-len", "4096"],
    "fit": ["fit", "{m}", "--gpu", GPU, "--batch", "8", "--prompt", "1024", "--output", "128", "--json"],
    "plan": ["plan", "{m}", "--gpu", GPU, "--batch", "4", "--prompt", "512", "--output", "64", "--json"],
    "sweep": ["sweep", "{m}", "--gpu", GPU, "--batch", "1,16", "--prompt", "512", "--output", "64", "--json",
              "--csv", "{csv}"],
    "slo": ["slo", "{m}", "--gpu", GPU, "--rate", "1", "--prompt", "256", "--output", "32", "--ttft", "2",
            "--sim-requests", "50", "--simulate-top", "1", "--max-batch", "16", "--json"],
}
# every number a user can type, per command (the model is a bundled one)
BAD_NUMBERS = ("0", "-1", "1.5", "1e308", "nan", "inf", "-inf", "abc", "", "99999999999999999999", "9" * 5000,
               "1,2,-3", "0x10", " 7", "1_000")
FLAGS = {
    "inspect": ["--context", "--batch", "--kv-heads"],
    "capacity": ["--tp", "--pp", "--gpu-memory-utilization", "--max-model-len", "--max-num-batched-tokens",
                 "--block-size", "--kv-heads"],
    "fit": ["--tp", "--pp", "--batch", "--prompt", "--output", "--kv-heads"],
    "plan": ["--gpus", "--pp", "--batch", "--prompt", "--output", "--kv-heads", "--tp"],
    "sweep": ["--batch", "--prompt", "--output", "--tp"],
    "slo": ["--rate", "--prompt", "--output", "--ttft", "--tpot", "--e2e", "--max-batch", "--simulate-top",
            "--sim-requests", "--tp"],
}
BASE_ARGS = {
    "inspect": {"--context": "1024", "--batch": "2"},
    "capacity": {"--gpu": GPU},
    "fit": {"--gpu": GPU, "--batch": "8", "--prompt": "1024", "--output": "128"},
    "plan": {"--gpu": GPU, "--batch": "4", "--prompt": "512", "--output": "64"},
    "sweep": {"--gpu": GPU, "--batch": "1,8", "--prompt": "512", "--output": "64"},
    "slo": {"--gpu": GPU, "--rate": "1", "--prompt": "256", "--output": "32", "--ttft": "2", "--sim-requests": "50",
            "--simulate-top": "1", "--max-batch": "16"},
}
# keys whose values are signed by definition (a plan that does not fit has a negative headroom)
SIGNED = re.compile(r"headroom|signed|error_pct|_pct$|low_pct|high_pct|median_pct|offset_bytes")
ERROR_LINE = re.compile(r"^error: ([^:\s]+(?::[^:\s]+)*|argument [^:]+): \S.*$")


@dataclass
class Case:
    """One CLI run: the arguments, and the config file to write first (None: a bundled model)."""

    label: str
    argv: list[str]
    config_text: str | None = None
    config_name: str = "config.json"


@dataclass
class Outcome:
    rc: int | None
    stdout: str = ""
    stderr: str = ""
    traceback: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


# ---- the cases ------------------------------------------------------------------------------------
def bundled_configs() -> dict[str, dict]:
    from planner import profiles

    return {n: json.loads((profiles.ROOT / "models" / n / "config.json").read_text()) for n in profiles.model_names()}


def _dump(cfg) -> str:
    return json.dumps(cfg)  # NaN and Infinity as JavaScript literals, as Python's json writes and reads them


def mutations(cfg: dict) -> list[tuple[str, object]]:
    """(label, mutated config) for every field (top level, text_config, quantization_config) and value."""
    out = []
    keys = list(dict.fromkeys([*cfg, *EXTRA_KEYS]))
    for k in keys:
        for v in VALUES:
            out.append((f"{k}={v!r}", {**cfg, k: v}))
    for parent in ("text_config", "quantization_config", "rope_scaling"):
        sub = cfg.get(parent)
        if isinstance(sub, dict):
            for k in sub:
                for v in VALUES:
                    out.append((f"{parent}.{k}={v!r}", {**cfg, parent: {**sub, k: v}}))
    return out


def special_texts(cfg: dict) -> list[tuple[str, str]]:
    """Config texts the field-by-field values cannot reach: huge numbers, deep nesting, odd layer lists."""
    n = cfg.get("num_hidden_layers") or cfg.get("n_layer") or 2
    n = n if isinstance(n, int) and 0 < n < 1000 else 2
    body = _dump(cfg)[1:-1]
    return [
        ("hidden_size=5000 digits", _dump({**cfg, "hidden_size": 0}).replace('"hidden_size": 0', '"hidden_size": ' + "9" * 5000)),
        ("unused=5000 digits", "{" + body + ', "unused": ' + "1" * 5000 + "}"),
        ("nesting 100000 deep", "{" + body + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("layer_types of dicts", _dump({**cfg, "layer_types": [{"a": 1}] * n})),
        ("layer_types of lists", _dump({**cfg, "layer_types": [[1]] * n})),
        ("mlp_only_layers of dicts", _dump({**cfg, "mlp_only_layers": [{}]})),
        ("architectures=5", _dump({**cfg, "architectures": 5})),
        ("architectures=[{}]", _dump({**cfg, "architectures": [{}]})),
        ("model_type=[]", _dump({**cfg, "model_type": ["llama"]})),
        ("quant bits=nan", _dump({**cfg, "quantization_config": {"quant_method": "gptq", "bits": NAN}})),
        ("quant method=[x", _dump({**cfg, "quantization_config": {"quant_method": "[x"}})),
        ("quant group=-7", _dump({**cfg, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": -7}})),
        ("jamba period=0", _dump({**cfg, "model_type": "jamba", "attn_layer_period": 0})),
        ("gemma3 pattern=0", _dump({**cfg, "model_type": "gemma3_text", "sliding_window": 512, "sliding_window_pattern": 0})),
        ("qwen3_next interval=0", _dump({**cfg, "model_type": "qwen3_next", "full_attention_interval": 0})),
        ("deepseek freq=0", _dump({**cfg, "model_type": "deepseek_v3", "n_routed_experts": 4, "num_experts_per_tok": 2,
                                   "moe_layer_freq": 0})),
        ("not an object", "[1, 2, 3]"),
        ("empty", ""),
        ("binary", "\x00\xff garbage"),
        ("truncated", _dump(cfg)[: len(_dump(cfg)) // 2]),
    ]


def config_cases(seed: int = 0) -> list[Case]:
    """Every mutated config once, each through one of the config commands (cycled), shuffled by ``seed``."""
    cases, commands = [], list(CONFIG_COMMANDS)
    i = 0
    for name, cfg in bundled_configs().items():
        texts = [(lab, _dump(c)) for lab, c in mutations(cfg)] + special_texts(cfg)
        for label, text in texts:
            cmd = commands[i % len(commands)]
            i += 1
            cases.append(Case(f"{name} {label} | {cmd}", list(CONFIG_COMMANDS[cmd]), text))
    random.Random(seed).shuffle(cases)
    return cases


def flag_cases(model: str = "Llama-3.1-8B") -> list[Case]:
    """Every numeric flag of every command with every bad number, the others at sane values."""
    cases = []
    for cmd, flags in FLAGS.items():
        for flag in flags:
            for value in BAD_NUMBERS:
                args = {**BASE_ARGS[cmd], flag: value}
                argv = [cmd, model, *[x for kv in args.items() for x in kv], "--json"]
                cases.append(Case(f"{cmd} {flag}={value[:20]!r}", argv))
    return cases


def extra_cases() -> list[Case]:
    """Grid sizes, limits and paths the review named."""
    m = "Llama-3.1-8B"
    big = ",".join(str(i) for i in range(1, 3001))
    return [Case(label, argv) for label, argv in (
        ("sweep 1.8e7 rows", ["sweep", m, "--gpu", GPU, "--batch", big, "--prompt", big, "--output", "1,2"]),
        ("slo 1e8 requests", ["slo", m, *sum(([k, v] for k, v in BASE_ARGS["slo"].items()), []),
                              "--sim-requests", "100000000"]),
        ("capacity len 0", ["capacity", m, "--gpu", GPU, "--max-model-len", "0"]),
        ("csv to missing folder", ["plan", m, *sum(([k, v] for k, v in BASE_ARGS["plan"].items()), []),
                                   "--csv", "/nonexistent-folder/x/out.csv"]),
        ("csv to a directory", ["plan", m, *sum(([k, v] for k, v in BASE_ARGS["plan"].items()), []), "--csv", "/"]),
        ("unknown gpu", ["plan", m, "--gpu", "=cmd|calc", "--batch", "1", "--prompt", "1", "--output", "1"]),
        ("unknown model", ["inspect", "[x](https://evil.example)"]),
        ("validate missing", ["validate", "/nonexistent-folder", "--no-reference"]),
    )]


# ---- one run --------------------------------------------------------------------------------------
class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_case(case: Case, workdir: Path, timeout_s: float = 60.0) -> Outcome:
    """Write the case's config (if any) into a fresh folder of ``workdir`` and run the CLI in-process."""
    from planner import cli

    folder = Path(tempfile.mkdtemp(dir=workdir))
    argv = list(case.argv)
    if case.config_text is not None:
        path = folder / case.config_name
        path.write_text(case.config_text, encoding="utf-8", errors="surrogateescape")
        argv = [str(path) if a == "{m}" else a for a in argv]
    argv = [str(folder / "out.csv") if a == "{csv}" else a for a in argv]
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm) if hasattr(signal, "SIGALRM") else None
    if old is not None:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    t0 = time.perf_counter()
    res = Outcome(rc=None)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            res.rc = cli.main(argv)
    except SystemExit as e:
        res.rc = e.code if isinstance(e.code, int) else 1
    except Hang:
        res.traceback = f"hang: over {timeout_s:g} s"
    except BaseException as e:  # noqa: BLE001 - what the fuzz counts
        if isinstance(e, KeyboardInterrupt):
            raise
        res.traceback = "".join(traceback.format_exception(e))[-3000:]
    finally:
        if old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    res.seconds = time.perf_counter() - t0
    res.stdout, res.stderr = out.getvalue(), err.getvalue()
    res.problems = check(argv, res, folder / "out.csv")
    return res


# ---- the checks -----------------------------------------------------------------------------------
def bad_figures(value, path: str = "") -> list[str]:
    """Paths of negative, NaN or infinite numbers in a JSON value (signed keys aside)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        if SIGNED.search(path):
            return [] if math.isfinite(value) else [f"{path}={value}"]
        return [] if math.isfinite(value) and value >= 0 else [f"{path}={value}"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in bad_figures(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in bad_figures(v, f"{path}[{i}]")]
    return []


def csv_figures(path: Path) -> list[str]:
    import pandas as pd

    if not path.is_file():
        return []
    df = pd.read_csv(path)
    bad = []
    for c in df.select_dtypes("number").columns:
        if SIGNED.search(c):
            continue
        n = int((~(df[c].to_numpy(float) >= 0)).sum())  # negative, NaN (an empty cell) or -inf
        if n:
            bad.append(f"csv:{c} has {n} negative/NaN cells")
    return bad


def check(argv: list[str], res: Outcome, csv_path: Path) -> list[str]:
    if res.traceback:
        return ["hang" if res.traceback.startswith("hang") else "traceback"]
    if res.rc == 2:
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        if len(lines) != 1 or not ERROR_LINE.match(lines[0]):
            return ["error not one line naming a field"]
        return []
    if res.rc != 0:
        return [f"exit code {res.rc}"]
    if "--json" in argv:
        try:
            data = json.loads(res.stdout) if res.stdout.strip() else None
        except ValueError:
            return ["stdout is not JSON"]
        figures = bad_figures(data)
        if figures:
            return ["negative/NaN figure: " + ", ".join(figures[:4])]
    figures = csv_figures(csv_path)
    return ["negative/NaN figure: " + ", ".join(figures[:4])] if figures else []


# ---- the dashboard's doors --------------------------------------------------------------------------
QUERY_VALUES = ("[Session expired: log in](https://evil.example/login)", "![x](https://evil.example/track.png)",
                ":red[Account locked]", "<script>alert(1)</script>", "=2+5+cmd", "\r\n=1", "9" * 5000, "-1", "0",
                "1e308", "nan", "", " ", "H100-SXM", "bf16", "3")
UPLOAD_NAMES = ("config.json", "[x](https://evil.example).json", "<b>x</b>.json", "=cmd.json", "a\nb.json")


def dashboard_cases(seed: int = 0) -> list[Case]:
    """Every mutated config as an upload (file names cycled), then every query parameter x value."""
    cases = [Case(f"upload {c.label.rsplit(' | ', 1)[0]}", [], c.config_text,
                  UPLOAD_NAMES[i % len(UPLOAD_NAMES)]) for i, c in enumerate(config_cases(seed))]
    from dashboard.state import PARAMS

    cases += [Case(f"query {p}={v[:30]!r}", ["query", p, v]) for p in PARAMS for v in QUERY_VALUES]
    return cases


def run_dashboard_case(case: Case, workdir: Path, timeout_s: float = 60.0) -> Outcome:
    """An upload planned as the plan page plans it, or a query value read as the sidebar reads it."""
    from dashboard import core, fmt, state
    from planner import api
    from planner.errors import PlannerInputError

    res = Outcome(rc=0)
    try:
        if case.argv[:1] == ["query"]:
            _, name, raw = case.argv
            try:
                state._parse_param(name, raw)
            except PlannerInputError as e:
                res.rc = 2
                text = state.param_warning(name, raw, e)
                if re.sub(r"\\(.)", r"\1", text).replace(fmt.WORD_JOINER, "") == text and any(
                        c in raw for c in "[]()!:"):
                    res.problems = ["markdown left in a warning"]
            return res
        data = case.config_text.encode("utf-8", "surrogateescape")
        try:
            name, text = core.check_upload(data, case.config_name)
            spec = core.spec(name, text)
            p = api.plan(spec, GPU, 4, 512, 64, simulate=False)
            f = api.fit(spec, GPU, 4, 512, 64)
        except PlannerInputError as e:
            res.rc = 2
            res.problems = [] if e.field and "\n" not in str(e) else ["error not one line naming a field"]
            return res
        figures = bad_figures({k: v for d in (p, f) for k, v in d.items() if isinstance(v, int | float)})
        res.problems = ["negative/NaN figure: " + ", ".join(figures[:4])] if figures else []
        if not re.fullmatch(r"[A-Za-z0-9._+ -]+ \(uploaded\)", name):
            res.problems.append(f"unsafe name {name!r}")
    except BaseException as e:  # noqa: BLE001 - what the fuzz counts
        if isinstance(e, KeyboardInterrupt):
            raise
        res.rc, res.traceback = None, "".join(traceback.format_exception(e))[-3000:]
        res.problems = ["traceback"]
    return res


# ---- the driver -----------------------------------------------------------------------------------
def all_cases(seed: int = 0) -> list[Case]:
    return extra_cases() + flag_cases() + config_cases(seed)


def take(cases: list[Case], runs: int) -> list[Case]:
    """``runs`` cases: the list, repeated from the start with the next command where it is too short."""
    if runs <= len(cases):
        return cases[:runs]
    out, extra = list(cases), 0
    commands = list(CONFIG_COMMANDS)
    while len(out) < runs:
        extra += 1
        for c in cases:
            if len(out) >= runs:
                break
            if c.config_text is None:
                continue
            cmd = commands[(commands.index(c.label.rsplit("| ", 1)[1]) + extra) % len(commands)]
            out.append(Case(c.label.rsplit("| ", 1)[0] + f"| {cmd}", list(CONFIG_COMMANDS[cmd]), c.config_text))
    return out


def _worker(args) -> list[tuple[str, list[str], str, int | None]]:
    cases, timeout_s, door = args
    run = run_dashboard_case if door == "dashboard" else run_case
    with tempfile.TemporaryDirectory() as d:
        results = []
        for c in cases:
            r = run(c, Path(d), timeout_s)
            results.append((c.label, r.problems, r.traceback.strip().splitlines()[-1] if r.traceback else "", r.rc))
        return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one run may take before it counts as a hang")
    ap.add_argument("--show", type=int, default=20, help="print this many failing cases")
    ap.add_argument("--door", choices=("cli", "dashboard"), default="cli")
    a = ap.parse_args(argv)
    if a.door == "dashboard":  # quiet the "no runtime" warnings: st.cache_* works without one
        import logging

        logging.disable(logging.WARNING)
    every = dashboard_cases(a.seed) if a.door == "dashboard" else all_cases(a.seed)
    cases = take(every, a.runs) if a.door == "cli" else every[: a.runs]
    chunks = [(cases[i::a.jobs * 8], a.timeout, a.door) for i in range(a.jobs * 8)]
    t0 = time.time()
    if a.jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(a.jobs, maxtasksperchild=1) as pool:
            results = [r for part in pool.imap_unordered(_worker, chunks) for r in part]
    else:
        results = [r for ch in chunks for r in _worker(ch)]
    kinds = Counter(p.split(":")[0] for _, probs, _, _ in results for p in probs)
    failing = [(lab, probs, tb) for lab, probs, tb, _ in results if probs]
    codes = Counter(rc for *_, rc in results)
    print(f"{a.door} runs: {len(results):,} in {time.time() - t0:,.0f} s ({a.jobs} jobs, seed {a.seed}, "
          f"{len(every):,} distinct cases)")
    print(f"answered (exit 0): {codes.get(0, 0):,}; refused (exit 2): {codes.get(2, 0):,}")
    print(f"tracebacks: {kinds.get('traceback', 0)}")
    print(f"hangs: {kinds.get('hang', 0)}")
    print(f"negative/NaN figures: {kinds.get('negative/NaN figure', 0)}")
    print(f"other failures: {sum(kinds.values()) - sum(kinds.get(k, 0) for k in ('traceback', 'hang', 'negative/NaN figure'))}")
    order = {"traceback": 0, "hang": 1, "negative/NaN figure": 2}
    failing.sort(key=lambda f: order.get(f[1][0].split(":")[0], 3))
    for lab, probs, tb in failing[: a.show]:
        print(f"  {lab}: {'; '.join(probs)} {tb}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
