"""``python -m planner command``: the engine's serve command for a plan and the benchmark that checks it
(planner/commands.py; registered through planner/cli.py EXTENSIONS)."""

from __future__ import annotations

from . import cli_gpu, commands
from .cli_serving import _count, _list, _on_off, engine_fields
from .errors import PlannerInputError
from .memory import SERVERS, Deployment


def _command(a):
    if a.gpu is None:
        raise PlannerInputError("--gpu", "no GPU given", "add --gpu H100-SXM (see `list`), or --gpu-file")
    dep = Deployment(weights=a.weights or commands.api.default_weights(commands.api.resolve_model(a.model)),
                     kv_dtype=a.kv_dtype, tp=a.tp, pp=a.pp, **engine_fields(a.engine, a.engine_version),
                     gpu_memory_utilization=a.memory_fraction, max_num_batched_tokens=a.max_num_batched_tokens,
                     cuda_graph_sizes=tuple(a.cuda_graph_sizes) if a.cuda_graph_sizes else None,
                     async_scheduling=a.async_scheduling)
    c = commands.commands(a.model, a.gpu, dep, a.prompt, a.output, a.batch, rate=a.rate, max_tokens=a.max_tokens,
                          max_model_len=a.max_model_len)
    out = {"engine": c.engine, "engine_version": c.version, "model_id": c.model_id,
           "serve": {"argv": list(c.serve.argv), "shell": c.serve.shell, "notes": list(c.serve.notes)},
           "bench": {"argv": list(c.bench.argv), "shell": c.bench.shell, "notes": list(c.bench.notes)}}
    if a.json:
        return out
    for what, cmd in (("serve", c.serve), ("benchmark", c.bench)):
        print(f"# {what} ({c.engine} {c.version})")
        print(cmd.shell)
        for n in cmd.notes:
            print(f"# note: {n}")
    return None


def register(sub, command):
    """Add ``command`` to the planner's sub-commands."""
    from .cli import number, whole

    sp = sub.add_parser("command", help="the vllm / sglang / trtllm serve command of a plan and the benchmark "
                                        "command that checks it with the same traffic")
    sp.add_argument("model", help="bundled model name, config path or Hub id (the command loads the Hub id, or "
                                  "the bundled config's source repo)")
    sp.add_argument("--gpu", default=None, help="GPU id (see `list`), e.g. H100-SXM; or --gpu-file / --gpu-*")
    cli_gpu.add_flags(sp)
    sp.add_argument("--engine", default="vllm", choices=(*SERVERS, "transformers"),
                    help="serving engine (default vllm); transformers is refused: it has no server")
    sp.add_argument("--engine-version", default=None, help="its release (default: the newest in profiles/engines)")
    sp.add_argument("--tp", type=whole(1, 1024), default=1, help="tensor-parallel degree")
    sp.add_argument("--pp", type=whole(1, 1024), default=1, help="pipeline-parallel stages")
    sp.add_argument("--batch", type=whole(), required=True, help="concurrent requests: max_num_seqs, and the "
                                                                 "benchmark's clients")
    sp.add_argument("--prompt", type=whole(), required=True, help="prompt tokens per request")
    sp.add_argument("--output", type=whole(), required=True, help="output tokens per request")
    sp.add_argument("--rate", type=number(0, 1e6), default=None,
                    help="requests per second: an open-loop benchmark (--request-rate) instead of --batch clients")
    sp.add_argument("--max-tokens", type=whole(), default=None,
                    help="the requests' max_tokens cap (max_model_len becomes prompt + max_tokens)")
    sp.add_argument("--max-model-len", type=whole(), default=None, help="default: prompt + (max-tokens or output)")
    sp.add_argument("--weights", default=None, help="weight format (default: the checkpoint's own)")
    sp.add_argument("--kv-dtype", default="auto", help="KV cache dtype: auto (the default: what the engine allocates, "
                                                      "no flag written), bf16, fp16, fp8 (int8, int4: refused)")
    sp.add_argument("--async-scheduling", default=None, type=_on_off, metavar="{on,off}",
                    help="vLLM's async scheduling (default: the release's, on from 0.14.0); written as "
                         "--async-scheduling / --no-async-scheduling where it differs from the default")
    sp.add_argument("--memory-fraction", type=number(0, 1), default=None,
                    help="vLLM --gpu-memory-utilization / SGLang --mem-fraction-static / TensorRT-LLM "
                         "--kv_cache_free_gpu_memory_fraction (default: the engine version's)")
    sp.add_argument("--max-num-batched-tokens", type=whole(), default=None,
                    help="token budget per step (SGLang --chunked-prefill-size; default: the engine version's)")
    sp.add_argument("--cuda-graph-sizes", type=_list(_count), default=None,
                    help="CUDA-graph batch sizes, comma-separated (default: the engine's)")
    sp.add_argument("--json", action="store_true", help="print JSON (stable keys)")
    command("command")(_command)
