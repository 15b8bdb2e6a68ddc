"""``python -m planner plan``, ``sweep`` and ``slo`` (registered through planner/cli.py EXTENSIONS_CORE).

``plan`` prints one deployment at one operating point; ``sweep`` every plan of a grid (one tidy
table); ``slo`` the cheapest deployments that serve a workload within latency targets. All three
write CSV with ``--csv FILE`` (text cells neutralised against CSV injection).
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from . import api, cli_gpu, csvsafe, profiles, request, slo, sweep
from .errors import PlannerInputError
from .memory import MXFP4_MOE_BACKENDS, SERVERS
from .requestparams import SWITCH_WORDS


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _list(kind):
    """argparse type: a comma-separated list of ``kind`` (str, or _count: whole numbers of at least 1)."""
    what = "whole numbers of at least 1" if kind is _count else "names"

    def parse(text: str):
        items = [x.strip() for x in str(text).split(",") if x.strip()]
        if not items:
            raise argparse.ArgumentTypeError("give at least one value")
        try:
            return list(dict.fromkeys(kind(x) for x in items))  # a repeated value is one value
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:60]!r} is not a comma-separated list of {what}") from None
    return parse


def _on_off(text: str) -> bool:
    """argparse type of a switch given a value: on / off (1 / 0, true / false: what ``to_argv`` writes)."""
    t = str(text).strip().lower()
    if t not in SWITCH_WORDS:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not on or off")
    return SWITCH_WORDS[t]


def _csv_target(a) -> None:
    if a.csv:
        csvsafe.check_path(a.csv)


# ``--engine`` of plan and sweep, as slo's and command's: a serving engine (its start-up KV pool, scheduler and
# fitted costs), or transformers (HF generate); "paged" (the KV layout these commands once took) is vLLM's
ENGINE_CHOICES = (*SERVERS, "transformers", "paged")


def engine_fields(engine: str, version: str | None) -> dict:
    """The deployment fields of ``--engine`` / ``--engine-version`` (plan, sweep, slo, command): the KV layout,
    and the serving engine of a paged one."""
    if engine == "transformers":
        return {"engine": "transformers", "server": "vllm", "server_version": version}
    return {"engine": "paged", "server": "vllm" if engine == "paged" else engine, "server_version": version}


def engine_of(a) -> dict:
    """``engine_fields`` of plan's and sweep's arguments; a release given for transformers is refused."""
    if a.engine == "transformers" and a.engine_version:
        raise PlannerInputError("engine_version", "is a serving engine's release; transformers has none",
                                "drop --engine-version or give --engine vllm, sglang or trtllm")
    eng = engine_fields(a.engine, a.engine_version)
    return {"engine": "transformers"} if a.engine == "transformers" else eng


def request_of(a) -> request.PlanRequest:
    """The PlanRequest of ``plan``'s arguments (``PlanRequest.to_argv`` writes them back)."""
    kw = {"tp": a.tp, "pp": a.pp, "kv_dtype": a.kv_dtype, "mxfp4_moe_backend": a.mxfp4_moe_backend,
          "async_scheduling": a.async_scheduling, **engine_of(a)}
    return request.build(a.model, a.gpu, a.batch, a.prompt, a.output, gpus=a.gpus, simulate=not a.no_simulate,
                         weights=a.weights, **kw)


def _plan(a):
    _csv_target(a)
    result = api.plan_request(request_of(a))
    out = result.as_dict()
    if not out["latency_bands"]:
        out["latency_bands"] = {"note": "no published run backs this engine: the latency has no measured band"}
    if a.csv:  # the plan's names, then numbers only (units in the column names)
        csvsafe.write(pd.DataFrame([{**result.labels(), **result.to_row()}]), a.csv)
    return out


def _sweep(a):
    _csv_target(a)
    models = profiles.unique_names([api.resolve_model(m) for m in a.model])  # two files, two names
    eng = engine_of(a)
    df = sweep.sweep(models, a.gpu, a.batch, a.prompt, a.output, weights=a.weights, kv_dtypes=a.kv_dtype, tps=a.tp,
                     **eng)
    if a.frontier:
        df = sweep.pareto_frontier(df, by=["model", "gpu", "weights", "kv_dtype", "tp", "prompt_tokens",
                                           "output_tokens"])
    if a.csv:
        csvsafe.write(df, a.csv)
    summary = {"rows": int(len(df)), "fitting_rows": int(df["fits"].sum()), "skipped": df.attrs.get("skipped", []),
               "csv": a.csv or None}
    if not a.json and not a.csv:
        # a sweep is the mean-value model: its TTFT is one prompt's floor, not the simulated headline of `plan`
        cols = ["model", "gpu", "weights", "kv_dtype", "tp", "batch", "prompt_tokens", "output_tokens", "fits",
                *(sweep.MEAN_VALUE_NAMES[c] for c in ("ttft_s", "tpot_s")), "output_tokens_per_s_per_gpu",
                "cost_usd_per_1m_output_tokens"]
        with pd.option_context("display.max_rows", 60, "display.width", 200):
            print(df[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}", na_rep="-"))  # NaN: no price
    return summary


def _slo(a):
    _csv_target(a)
    wl = slo.Workload(request_rate_per_s=a.rate, prompt_tokens=a.prompt, output_tokens=a.output,
                      distribution=a.distribution, max_tokens=a.max_tokens)
    tg = slo.Targets(ttft_s=a.ttft, tpot_s=a.tpot, e2e_s=a.e2e, percentile=a.percentile)
    eng = engine_fields(a.engine, a.engine_version)
    cand = slo.Candidates(gpus=tuple(a.gpu or ()), tps=tuple(a.tp or ()), pps=tuple(a.pp or ()),
                          weights=tuple(a.weights or ()), kv_dtypes=tuple(a.kv_dtype or ()), engine=eng["engine"],
                          server=eng["server"], server_version=eng["server_version"],
                          max_batch=a.max_batch, max_gpus=a.max_gpus, simulate_top=a.simulate_top,
                          sim_requests=a.sim_requests)
    df = slo.plan_capacity(a.model, wl, tg, cand)
    if a.csv:
        csvsafe.write(df, a.csv)
    if a.json:
        return json.loads(df.to_json(orient="records"))  # NaN -> null, nullable ints stay ints
    cols = [c for c in ("status", "gpu", "tp", "pp", "weights", "kv_dtype", "replicas", "gpus_total", "batch",
                        "usd_per_hour", "cost_usd_per_1m_output_tokens", f"sim_ttft_p{tg.percentile}_s",
                        f"sim_tpot_p{tg.percentile}_s", "reason") if c in df]
    shown = df if a.all else df[df["failed"].ne("cost")] if "failed" in df else df
    with pd.option_context("display.max_rows", 200, "display.width", 250, "display.max_colwidth", 90):
        print(shown[cols].head(a.rows).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    s = df.attrs["search"]
    hidden = len(df) - min(len(shown), a.rows)
    print(f"\n{s['candidates']} candidates: {s['rejected_by_bound']} rejected by the roofline bound, {s['built']} plans "
          f"built (mean-value), {s['simulated']} simulated ({s['simulations']} runs)"
          + (f"; {hidden} rows not shown (--all, --rows or --csv for every row)" if hidden else ""))
    print(f"answer: {df.attrs['verdict']}")
    return None


def register(sub, command):
    """Add ``plan``, ``sweep`` and ``slo`` to the planner's sub-commands."""
    from .cli import whole  # cli imports this module when it builds its parser
    def deployment(sp, many: bool):
        sp.add_argument("--weights", default=None, type=_list(str) if many else str,
                        help="weight format(s) (default: the checkpoint's own, else bf16)")
        sp.add_argument("--kv-dtype", default=["bf16"] if many else "auto", type=_list(str) if many else str,
                        help="KV cache dtype(s): fp32, fp16, bf16, fp8, int8, int4" + ("" if many else
                             "; default auto: what the engine allocates (the model's dtype, or the checkpoint's fp8 "
                             "KV scheme where that engine release reads it)"))
        sp.add_argument("--tp", default=[1] if many else 1, type=_list(_count) if many else int,
                        help="tensor-parallel degree(s)")
        sp.add_argument("--engine", default="vllm", choices=ENGINE_CHOICES,
                        help="serving engine (its start-up KV pool, scheduler and fitted costs); transformers: HF "
                             "generate (paged: vLLM)")
        sp.add_argument("--engine-version", default=None,
                        help="the engine's release, e.g. 0.10.2 (default: the newest in profiles/engines)")
        sp.add_argument("--csv", default=None, help="write the result to this CSV file")
        sp.add_argument("--json", action="store_true", help="print JSON (stable keys)")

    sp = sub.add_parser("plan", help="one deployment at one operating point: memory, TTFT, TPOT, throughput, cost")
    sp.add_argument("model", help="bundled model name (see `list`), a path to a config.json / folder, or a Hugging "
                                  "Face Hub id (org/name[@revision])")
    sp.add_argument("--gpu", default=None, help="GPU id (see `list`), e.g. H100-SXM; or a user-defined GPU: "
                                                "--gpu-file or the --gpu-* figures")
    cli_gpu.add_flags(sp)
    sp.add_argument("--gpus", type=int, default=None, help="GPUs in the deployment (replicas = gpus / (tp x pp))")
    sp.add_argument("--pp", type=int, default=1, help="pipeline-parallel stages")
    sp.add_argument("--batch", type=int, required=True, help="concurrent requests per replica")
    sp.add_argument("--prompt", type=int, required=True, help="prompt tokens per request")
    sp.add_argument("--output", type=int, required=True, help="output tokens per request")
    sp.add_argument("--kv-heads", type=int, default=None,
                    help="what-if: regroup attention to this many KV heads (1 = MQA; needs uptraining)")
    sp.add_argument("--no-simulate", action="store_true",
                    help="mean-value latency only (no simulation of the batch's clients)")
    sp.add_argument("--mxfp4-moe-backend", default="auto", choices=MXFP4_MOE_BACKENDS,
                    help="vLLM's kernel for MXFP4 experts (gpt-oss): auto = vLLM's default (Triton on Hopper), "
                         "marlin = VLLM_MXFP4_USE_MARLIN=1 (about twice as slow at prefill; its time is borrowed "
                         "from other models' Marlin rows, checked against runs of gpt-oss-120b only)")
    sp.add_argument("--async-scheduling", default=None, type=_on_off, metavar="{on,off}",
                    help="vLLM's --async-scheduling: on, the scheduler runs a step ahead of the GPU and no pass waits "
                         "for its CPU work; off, every pass pays the fitted per-pass cost (default: the release's, "
                         "on from 0.14.0)")
    deployment(sp, many=False)
    command("plan")(_plan)

    sp = sub.add_parser("sweep", help="every plan of a grid as one table (comma-separated lists on every axis)")
    sp.add_argument("model", type=_list(str), help="model name(s), config path(s) or Hub id(s), comma-separated")
    sp.add_argument("--gpu", default=None, type=_list(str), help="GPU id(s), comma-separated (plus a user-defined "
                                                                  "GPU from --gpu-file or the --gpu-* figures)")
    cli_gpu.add_flags(sp)
    sp.add_argument("--batch", required=True, type=_list(_count))
    sp.add_argument("--prompt", required=True, type=_list(_count))
    sp.add_argument("--output", required=True, type=_list(_count))
    sp.add_argument("--frontier", action="store_true", help="keep only the latency-throughput Pareto frontier")
    deployment(sp, many=True)
    command("sweep")(_sweep)

    sp = sub.add_parser("slo", help="the cheapest deployments that serve a request rate within latency targets")
    sp.add_argument("model", help="bundled model name, config path or Hub id")
    cli_gpu.add_flags(sp)
    sp.add_argument("--rate", required=True, type=float, help="requests per second to serve")
    sp.add_argument("--prompt", required=True, type=int, help="mean prompt tokens")
    sp.add_argument("--output", required=True, type=int, help="mean output tokens")
    sp.add_argument("--distribution", default="fixed", choices=slo.DISTRIBUTIONS,
                    help="of prompt and output lengths: fixed, uniform on [1, 2 mean - 1], exponential, spread "
                         "(within 10 %% of the mean, what plan's headline simulates)")
    sp.add_argument("--max-tokens", type=whole(), default=None,
                    help="the requests' max_tokens: outputs stop there (the rest at EOS); an engine that reserves "
                         "KV whole (TensorRT-LLM) reserves prompt + max_tokens per request")
    sp.add_argument("--ttft", type=float, default=None, help="TTFT target, seconds")
    sp.add_argument("--tpot", type=float, default=None, help="TPOT target, seconds")
    sp.add_argument("--e2e", type=float, default=None, help="end-to-end latency target, seconds")
    sp.add_argument("--percentile", type=int, default=90, choices=slo.PERCENTILES)
    sp.add_argument("--gpu", default=None, type=_list(str),
                    help="candidate GPU id(s), comma-separated (default: every bundled GPU; those without a price "
                         "are listed as rejected), plus a user-defined GPU from --gpu-file or --gpu-*")
    sp.add_argument("--tp", default=None, type=_list(_count),
                    help="tensor-parallel degree(s) (default: 1, 2, 4, 8 where they split the heads)")
    sp.add_argument("--pp", default=None, type=_list(_count),
                    help="pipeline stages (default: 1, more only where one node cannot hold the weights)")
    sp.add_argument("--weights", default=None, type=_list(str),
                    help="weight format(s) (default: bf16, fp8 and fp8-block where the GPU has fp8, and the "
                         "checkpoint's own)")
    sp.add_argument("--kv-dtype", default=None, type=_list(str),
                    help="KV cache dtype(s) (default: bf16, and fp8 where the GPU has fp8)")
    sp.add_argument("--engine", default="vllm", choices=(*SERVERS, "transformers"),
                    help="serving engine (its start-up KV pool and scheduler); transformers: HF generate")
    sp.add_argument("--engine-version", default=None,
                    help="the engine's release, e.g. 0.10.2 (default: the newest in profiles/engines)")
    sp.add_argument("--max-batch", type=int, default=256, help="largest max_num_seqs to consider")
    sp.add_argument("--max-gpus", type=int, default=4096, help="reject deployments needing more GPUs in all")
    sp.add_argument("--simulate-top", type=int, default=1,
                    help="confirm this many of the cheapest plans by simulation (the others: mean-value model)")
    sp.add_argument("--sim-requests", type=int, default=1000, help="requests per simulation")
    sp.add_argument("--rows", type=int, default=40, help="rows to print (the table, not --csv / --json)")
    sp.add_argument("--all", action="store_true",
                    help="print the candidates left unbuilt because they cannot be cheaper, too")
    sp.add_argument("--csv", default=None, help="write the result to this CSV file")
    sp.add_argument("--json", action="store_true", help="print JSON (stable keys)")
    command("slo")(_slo)
