"""``python -m planner engine-log FILE``: a vLLM, SGLang or TensorRT-LLM start-up log against the planner.

Parses the log (its settings and every memory line), predicts each line with the engine's rules for
that version, prints them side by side and names the term that disagrees. ``--save`` keeps what the
log measured as a calibration entry (profiles/engine_calibration.json) that ``capacity`` then uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import enginelog, logcheck, profiles
from .errors import PlannerInputError

MAX_LOG_FILE_BYTES = enginelog.MAX_LOG_BYTES


def read_log(path: str) -> str:
    if path == "-":
        return sys.stdin.read(MAX_LOG_FILE_BYTES + 1)
    p = Path(path)
    if not p.is_file():
        raise PlannerInputError("FILE", f"{path} is not a file", "give the path of a saved start-up log, or - for stdin")
    if p.stat().st_size > MAX_LOG_FILE_BYTES:
        raise PlannerInputError("FILE", f"{path} is {p.stat().st_size:,} bytes, more than a start-up log",
                                "keep the lines from the start to 'GPU KV cache size' / 'max_total_num_tokens'")
    data = p.read_bytes()
    if b"\x00" in data[:4096]:
        raise PlannerInputError("FILE", f"{path} is a binary file, not a log", "save the engine's console output as text")
    return data.decode("utf-8", errors="replace")


def resolve_model(log: enginelog.EngineLog, given: str | None):
    if given:
        return profiles.load_model(given)
    mid = log.model_id
    if not mid:
        raise PlannerInputError("model", "the log does not name the model", "pass --model with a bundled name or a config.json path")
    import difflib

    name = str(mid).rstrip("/").split("/")[-1]
    try:
        return profiles.load_model(name)
    except PlannerInputError:
        near = difflib.get_close_matches(name, profiles.model_names(), n=3, cutoff=0.6)
        hint = f" (closest bundled: {', '.join(near)}; same shapes only if it is the same architecture)" if near else ""
        raise PlannerInputError("model", f"the log serves {mid!r}, which is not bundled{hint}",
                                "pass --model with a bundled name (see `list`) or the model's config.json") from None


def resolve_gpu(log: enginelog.EngineLog, given: str | None):
    if given:
        return profiles.gpu(given)
    if log.gpu_name:
        g = profiles.gpu_for_nvml_name(log.gpu_name)
        if g:
            return g
    total = log.value("total_gpu_memory_gib")
    if total:
        near = [g for g in profiles.gpus().values() if g.cuda_total_memory_bytes
                and abs(g.cuda_total_memory_bytes / 2**30 - total) <= 0.011]
        if len(near) == 1:
            return near[0]
    raise PlannerInputError("gpu", "the log does not name the GPU" + (f" ({log.gpu_name})" if log.gpu_name else ""),
                            "pass --gpu with a GPU id from `list`")


def _check(a) -> logcheck.LogCheck:
    text = read_log(a.file)
    names = tuple(n for g in profiles.gpus().values() for n in g.nvml_names)
    log = enginelog.parse_log(text, names)
    if log.line(logcheck.POOL[log.engine]) is None and log.line("gpu_blocks") is None and log.line("kv_cache_gib") is None:
        found = sorted({v.key for v in log.logged}) or ["no memory line"]
        raise PlannerInputError("log", f"no KV-cache size line in this {log.engine} log (found: {', '.join(found)})",
                                "include the lines up to 'GPU KV cache size' / '# GPU blocks' (vLLM), "
                                "'KV Cache is allocated' / 'max_total_num_tokens' (SGLang) or 'Peak memory during memory "
                                "usage profiling' / 'Allocated ... for max tokens in paged KV cache' (TensorRT-LLM)")
    overrides = {k: getattr(a, k) for k in ("tp", "pp", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
                                            "max_num_batched_tokens", "kv_cache_dtype", "mem_fraction_static",
                                            "free_gpu_memory_fraction", "weights")
                 if getattr(a, k) is not None}
    if a.engine_version:
        overrides["version"] = a.engine_version
    spec = resolve_model(log, a.model)
    gpu = resolve_gpu(log, a.gpu)
    return logcheck.check(log, spec, gpu, overrides, a.entry_point)


def report(c: logcheck.LogCheck) -> dict:
    m = c.startup
    return {
        "engine": c.log.engine, "version": m.version, "version_evidence": c.log.version_evidence, "era": m.era,
        "model": c.model, "gpu": c.gpu, "tp": c.settings.tp, "pp": c.settings.pp,
        "settings_from_log": {k: {"value": v, "from": c.log.evidence.get(k, "")} for k, v in c.log.settings.items()
                              if not isinstance(v, dict | list) and k in _MEMORY_SETTINGS},
        "assumed": list(c.assumed),
        "lines": [{"line": x.label, "key": x.key, "logged": x.logged, "predicted": x.predicted, "unit": x.unit,
                   "error_pct": x.error_pct, "quoted": x.line} for x in c.lines],
        "disagreeing_term": c.disagreeing_term,
        "terms": [{"name": t.name, "gib": t.bytes / 2**30, "counted": t.counted, "source": t.source} for t in m.terms],
        "notes": list(m.notes),
    }


_MEMORY_SETTINGS = {"model", "model_path", "tensor_parallel_size", "tp_size", "pipeline_parallel_size", "pp_size",
                    "gpu_memory_utilization", "mem_fraction_static", "max_model_len", "max_seq_len", "context_length",
                    "max_num_seqs", "max_num_batched_tokens", "chunked_prefill_size", "kv_cache_dtype", "dtype",
                    "quantization", "enforce_eager", "block_size", "page_size", "max_running_requests",
                    "free_gpu_memory_fraction", "max_batch_size", "max_num_tokens", "tokens_per_block",
                    "moe_expert_parallel_size"}


def print_report(r: dict) -> None:
    print(f"{r['engine']} {r['version']} ({r['version_evidence']}); rules: {r['era']}")
    print(f"model {r['model']} on {r['gpu']}, TP {r['tp']}, PP {r['pp']}")
    for k, v in r["settings_from_log"].items():
        print(f"  {k:26s} {v['value']!s:>14}   from {v['from']}")
    for a in r["assumed"]:
        print(f"  assumed: {a}")
    print(f"\n{'line':30s} {'logged':>14s} {'predicted':>14s} {'error':>8s}")
    for x in r["lines"]:
        fmt = "{:>14,.2f}" if x["unit"] in ("GiB", "x") else "{:>14,.0f}"
        print(f"{x['line'] + ' (' + x['unit'] + ')':30s} {fmt.format(x['logged'])} {fmt.format(x['predicted'])} "
              f"{x['error_pct']:+7.1f}%")
    if r["disagreeing_term"]:
        print(f"\nlargest disagreement: {r['disagreeing_term']}")
    for n in r["notes"]:
        print(f"note: {n}")


def register(sub, command):
    sp = sub.add_parser("engine-log", help="a vLLM, SGLang or TensorRT-LLM start-up log against the planner: every "
                                           "memory line predicted, side by side, and the term that disagrees")
    sp.add_argument("file", help="the saved start-up log (- reads stdin)")
    sp.add_argument("--model", default=None, help="bundled model or config.json (default: the model the log names)")
    sp.add_argument("--gpu", default=None, help="GPU id (default: the card the log names)")
    sp.add_argument("--engine-version", default=None, help="override the version the log prints")
    sp.add_argument("--entry-point", default=None, choices=("serve", "LLM"), help="vllm serve or the LLM class")
    for flag, typ in (("--tp", int), ("--pp", int), ("--gpu-memory-utilization", float), ("--max-model-len", int),
                      ("--max-num-seqs", int), ("--max-num-batched-tokens", int), ("--kv-cache-dtype", str),
                      ("--mem-fraction-static", float), ("--free-gpu-memory-fraction", float)):
        sp.add_argument(flag, type=typ, default=None, help="fills or overrides what the log states")
    sp.add_argument("--weights", default=None, help="the weight format (see `list`), where the model's config is "
                                                   "another checkpoint's (default: the config's own, or the log's dtype)")
    sp.add_argument("--save", action="store_true", help="store what the log measured as a calibration entry "
                                                        "(profiles/engine_calibration.json) for `capacity`")
    sp.add_argument("--json", action="store_true")

    @command("engine-log")
    def _engine_log(a):
        c = _check(a)
        r = report(c)
        if a.save:
            path = logcheck.save_calibration(c, source=a.file)
            r["saved"] = str(path.name)
        if a.json:
            return r
        print_report(r)
        if a.save:
            print(f"saved as a calibration entry in profiles/{r['saved']}")
        return None
