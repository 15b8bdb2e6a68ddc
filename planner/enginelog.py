"""Read a serving engine's start-up log: its settings and every memory line it printed.

Pure text in, an ``EngineLog`` out (the CLI reads the file; ``planner/profiles.py`` is the one
module that reads the project's own files). Three engines:

* vLLM (V0 and V1): the engine's printed configuration ("Initializing a V1 LLM engine (v0.8.5)
  with config: model=..., tensor_parallel_size=...", "non-default args: {...}", "args:
  Namespace(...)"), a ``vllm serve`` / ``api_server`` command line, and the memory lines of
  ``worker.py`` / ``gpu_worker.py`` / ``kv_cache_utils.py``.
* SGLang: ``server_args=ServerArgs(...)``, a ``sglang.launch_server`` command line and the lines of
  ``model_runner.py`` ("Load weight end ... mem usage=", "KV Cache is allocated. #tokens:",
  "max_total_num_tokens=").
* TensorRT-LLM (PyTorch backend): the 'LLM Args:' dump, a ``trtllm-serve`` command line, the runtime line
  ("max_seq_len=..., max_num_requests=..., max_num_tokens=..., max_batch_size=...") and the memory lines of
  ``_torch/pyexecutor/_util.py`` ("Memory used after loading model weights (inside torch) ...", "Peak memory
  during memory usage profiling ...: available KV cache memory when calculating max tokens: ..., fraction is
  set ...") and of its KV cache manager ("Allocated ... for max tokens in paged KV cache (N)"; the first such
  line is the profiling pass's temporary cache and is left out).

Settings keep the engine's own names (``tensor_parallel_size``, ``gpu_memory_utilization``,
``mem_fraction_static``...). Where several sources state one, the engine's printed configuration
wins over the parsed arguments, which win over a command line (the printed one is what ran).
Every value the parser takes says where it came from (``evidence``).
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import PlannerInputError

MAX_LOG_BYTES = 20_000_000

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"

# (engine, key, pattern): the first group is the value; units are those the engine prints.
# vLLM's "GB" in 'Loading model weights took X GB' is GiB (it divides by float(2**30)).
LINE_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("vllm", "weights_gib", r"Loading model weights took " + _NUM + r" ?GB"),
    ("vllm", "weights_gib", r"Model loading took " + _NUM + r" ?Gi?B"),
    ("vllm", "weights_gib", r"model weights take " + _NUM + r" ?GiB"),
    ("vllm", "total_gpu_memory_gib", r"total_gpu_memory \(" + _NUM + r" ?GiB\)"),
    ("vllm", "total_gpu_memory_gib", r"total_gpu_memory=" + _NUM + r" ?GiB"),
    ("vllm", "requested_memory_gib", r"x gpu_memory_utilization \([0-9.]+\) = " + _NUM + r" ?GiB"),
    ("vllm", "non_torch_gib", r"non_torch_memory (?:takes )?" + _NUM + r" ?GiB"),
    ("vllm", "non_torch_gib", r"non_torch_memory=" + _NUM + r" ?GiB"),
    ("vllm", "activation_peak_gib", r"PyTorch activation peak memory (?:takes )?" + _NUM + r" ?GiB"),
    ("vllm", "activation_peak_gib", r"torch_peak_memory_increase=" + _NUM + r" ?GiB"),
    ("vllm", "peak_torch_gib", r"peak_torch_memory=" + _NUM + r" ?GiB"),
    ("vllm", "kv_cache_gib", r"the rest of the memory reserved for KV Cache is " + _NUM + r" ?GiB"),
    ("vllm", "kv_cache_gib", r"Available KV cache memory: " + _NUM + r" ?GiB"),
    ("vllm", "kv_cache_gib", r"kv_cache_size=" + _NUM + r" ?GiB"),
    ("vllm", "gpu_blocks", r"# GPU blocks: " + _NUM),
    ("vllm", "gpu_blocks", r"# cuda blocks: " + _NUM),
    ("vllm", "cpu_blocks", r"# CPU blocks: " + _NUM),
    ("vllm", "kv_cache_tokens", r"GPU KV cache size: " + _NUM + r" tokens"),
    ("vllm", "kv_cache_tokens", r"maximum number of tokens that can be stored in KV cache \(" + _NUM + r"\)"),
    # the 0.6.5 "Memory profiling results:" table, one figure per line
    ("vllm", "total_gpu_memory_gib", r"total_gpu_memory\s+" + _NUM + r" ?GiB"),
    ("vllm", "requested_memory_gib", r"the current vLLM instance can use\s+" + _NUM + r" ?GiB"),
    ("vllm", "weights_gib", r"model weights take\s+" + _NUM + r" ?GiB"),
    ("vllm", "non_torch_gib", r"non_torch_memory\s+" + _NUM + r" ?GiB"),
    ("vllm", "activation_peak_gib", r"PyTorch activation peak memory\s+" + _NUM + r" ?GiB"),
    ("vllm", "kv_cache_gib", r"available_kv_cache_memory\s+" + _NUM + r" ?GiB"),
    ("vllm", "max_concurrency_tokens", r"Maximum concurrency for " + _NUM + r" tokens per request"),
    ("vllm", "max_concurrency", r"Maximum concurrency for [0-9,]+ tokens per request: " + _NUM + r"x"),
    ("vllm", "cuda_graph_gib", r"Graph capturing finished in [0-9.]+ secs?, took " + _NUM + r" ?GiB"),
    ("vllm", "cuda_graph_estimate_gib", r"[Ee]stimated CUDA graph memory:? " + _NUM + r" ?GiB"),
    ("vllm", "cuda_graph_gib", r"CUDA graph pool memory: " + _NUM + r" ?GiB \(actual\)"),
    # V1 debug lines (VLLM_LOGGING_LEVEL=DEBUG), v0.10.2 vllm/v1/worker/gpu_worker.py
    ("vllm", "activation_peak_gib", r"torch peak memory increase: " + _NUM + r" ?GiB"),
    ("vllm", "non_torch_gib", r"non-torch forward increase memory: " + _NUM + r" ?GiB"),
    ("vllm", "weights_gib", r"; weights memory: " + _NUM + r" ?GiB"),
    ("vllm", "non_kv_gib", r"Total non KV cache memory: " + _NUM + r" ?GiB"),
    ("vllm", "requested_memory_gib", r"requested GPU memory: " + _NUM + r" ?GiB"),
    ("vllm", "initial_free_gib", r"Initial free memory:? " + _NUM + r" ?GiB"),
    # v0.10.2+ gpu_worker.py 'Free memory on device (78.57/79.18 GiB) on startup ... Actual usage is X GiB
    # for weight, Y GiB for peak activation, Z GiB for non-torch memory'
    ("vllm", "total_gpu_memory_gib", r"Free memory on device \([0-9.]+/" + _NUM + r" ?GiB\)"),
    ("vllm", "activation_peak_gib", r"Actual usage is [0-9.]+ ?GiB for weight, " + _NUM + r" ?GiB for peak activation"),
    ("vllm", "non_torch_gib", r"GiB for peak activation, " + _NUM + r" ?GiB for non-torch memory"),
    ("vllm", "graph_util_from", r"The current --gpu-memory-utilization=" + _NUM + r" is equivalent"),
    ("vllm", "graph_util_to", r"is equivalent to --gpu-memory-utilization=" + _NUM),
    ("sglang", "avail_mem_before_load_gb", r"Load weight begin\. avail mem=" + _NUM + r" ?GB"),
    ("sglang", "avail_mem_after_load_gb", r"Load weight end\..*?avail mem=" + _NUM + r" ?GB"),
    ("sglang", "weights_gb", r"Load weight end\..*?mem usage=" + _NUM + r" ?GB"),
    ("sglang", "kv_tokens", r"KV Cache is allocated\. #tokens: " + _NUM),
    ("sglang", "k_size_gb", r"KV Cache is allocated\..*?K size: " + _NUM + r" ?GB"),
    ("sglang", "v_size_gb", r"KV Cache is allocated\..*?V size: " + _NUM + r" ?GB"),
    ("sglang", "kv_size_gb", r"KV Cache is allocated\..*?KV size: " + _NUM + r" ?GB"),
    ("sglang", "avail_mem_after_pool_gb", r"Memory pool end\. avail mem=" + _NUM + r" ?GB"),
    ("sglang", "kv_tokens", r"max_total_num_tokens=" + _NUM),
    ("sglang", "chunked_prefill_size", r"max_total_num_tokens=[0-9]+, chunked_prefill_size=" + _NUM),
    ("sglang", "max_running_requests", r"max_running_requests=" + _NUM),
    ("sglang", "context_len", r"max_total_num_tokens=.*context_len=" + _NUM),
    ("sglang", "cuda_graph_gb", r"Capture cuda graph end\..*?mem usage=" + _NUM + r" ?GB"),
    # TensorRT-LLM's PyTorch backend: tensorrt_llm/_torch/pyexecutor/_util.py KvCacheCreator (estimate_max_tokens,
    # _cal_max_tokens) and the C++ KV cache manager's '[MemUsageChange] Allocated ... for max tokens'
    ("trtllm", "weights_gib", r"Memory used after loading model weights \(inside torch\) in memory usage profiling: "
     + _NUM + r" ?GiB"),
    ("trtllm", "outside_torch_gib", r"Memory used after loading model weights \(outside torch\) in memory usage "
     r"profiling: " + _NUM + r" ?GiB"),
    ("trtllm", "activation_peak_gib", r"Memory dynamically allocated during inference \(inside torch\) in memory usage "
     r"profiling: " + _NUM + r" ?GiB"),
    ("trtllm", "non_torch_gib", r"Memory used outside torch \(e\.g\., NCCL and CUDA graphs\) in memory usage profiling: "
     + _NUM + r" ?GiB"),
    ("trtllm", "peak_gib", r"Peak memory during memory usage profiling \(torch \+ non-torch\): " + _NUM + r" ?GiB"),
    ("trtllm", "kv_cache_gib", r"available KV cache memory when calculating max tokens: " + _NUM + r" ?GiB"),
    ("trtllm", "total_gpu_memory_gib", r"device total memory " + _NUM + r" ?GiB"),
    ("trtllm", "kv_pool_gib", r"Allocated " + _NUM + r" ?GiB for max tokens in paged KV cache"),
    ("trtllm", "kv_cache_tokens", r"Allocated [0-9.]+ ?GiB for max tokens in paged KV cache \(" + _NUM + r"\)"),
    ("trtllm", "kv_cache_tokens", r"Estimated max tokens in KV cache ?: " + _NUM),
)

# Where the engine prints its version (first match wins, in this order).
VERSION_PATTERNS: tuple[tuple[str, str], ...] = (
    ("vllm", r"vLLM API server version ([0-9][\w.+-]*)"),
    ("vllm", r"Initializing an? (?:V1 )?LLM engine \(v([0-9][\w.+-]*)\)"),
    ("vllm", r"vLLM Version: ([0-9][\w.+-]*)"),
    ("vllm", r"vllm/vllm-openai:v([0-9][\w.+-]*)"),
    ("vllm", r"\bvllm(?:==| )v?([0-9]+\.[0-9]+\.[0-9][\w.+-]*)"),
    ("sglang", r"sglang(?:==| version:? |:v)v?([0-9]+\.[0-9]+\.[0-9][\w.+-]*)"),
    ("sglang", r"lmsysorg/sglang:v([0-9][\w.+-]*)"),
    ("trtllm", r"TensorRT[- ]LLM version: ([0-9][\w.+-]*)"),
    ("trtllm", r"tensorrt[_-]llm(?:==| )v?([0-9]+\.[0-9]+\.[0-9][\w.+-]*)"),
)

# Command-line flags -> the engine's setting name; True = a switch without a value.
VLLM_FLAGS = {
    "model": "model", "tensor-parallel-size": "tensor_parallel_size", "tp": "tensor_parallel_size",
    "pipeline-parallel-size": "pipeline_parallel_size", "pp": "pipeline_parallel_size",
    "data-parallel-size": "data_parallel_size", "dp": "data_parallel_size",
    "gpu-memory-utilization": "gpu_memory_utilization", "max-model-len": "max_model_len",
    "max-num-seqs": "max_num_seqs", "max-num-batched-tokens": "max_num_batched_tokens",
    "kv-cache-dtype": "kv_cache_dtype", "dtype": "dtype", "quantization": "quantization", "q": "quantization",
    "block-size": "block_size", "swap-space": "swap_space", "enforce-eager": True,
    "enable-chunked-prefill": True, "enable-prefix-caching": True, "enable-expert-parallel": True,
    "kv-cache-memory": "kv_cache_memory_bytes", "kv-cache-memory-bytes": "kv_cache_memory_bytes",
    "num-gpu-blocks-override": "num_gpu_blocks_override", "cpu-offload-gb": "cpu_offload_gb",
}
SGLANG_FLAGS = {
    "model-path": "model_path", "model": "model_path", "tp": "tp_size", "tp-size": "tp_size",
    "tensor-parallel-size": "tp_size", "dp": "dp_size", "dp-size": "dp_size", "ep": "ep_size",
    "mem-fraction-static": "mem_fraction_static", "context-length": "context_length",
    "max-running-requests": "max_running_requests", "max-total-tokens": "max_total_tokens",
    "chunked-prefill-size": "chunked_prefill_size", "kv-cache-dtype": "kv_cache_dtype", "dtype": "dtype",
    "quantization": "quantization", "page-size": "page_size", "cuda-graph-max-bs": "cuda_graph_max_bs",
    "disable-cuda-graph": True, "enable-dp-attention": True,
}
TRTLLM_FLAGS = {  # trtllm-serve's click options (tensorrt_llm/commands/serve.py)
    "tp-size": "tensor_parallel_size", "pp-size": "pipeline_parallel_size", "ep-size": "moe_expert_parallel_size",
    "max-batch-size": "max_batch_size", "max-num-tokens": "max_num_tokens", "max-seq-len": "max_seq_len",
    "kv-cache-free-gpu-memory-fraction": "free_gpu_memory_fraction", "backend": "backend",
}


@dataclass(frozen=True)
class LoggedValue:
    key: str
    value: float
    line_no: int   # 1-based
    line: str      # the line as printed (ANSI codes removed)
    rank: str = "" # the worker that printed it ("" = the driver / an untagged line)


# vLLM V0 workers prefix their lines "(VllmWorkerProcess pid=350)", V1 "(VllmWorker rank=1 pid=..)",
# Ray "(RayWorkerWrapper pid=..)"; SGLang "[2025-01-23 19:35:14 TP3]".
_RANK = re.compile(r"\((\w*Worker\w*)(?: rank=(\d+))?(?: pid=(\d+))?[^)]*\)|\[[^\]]* (TP\d+)(?: [A-Z]+\d+)*\]")

# Planner-level names of the settings -> how each engine spells them (first found wins).
SETTING_NAMES = {
    "vllm": {"model": ("model",), "tp": ("tensor_parallel_size",), "pp": ("pipeline_parallel_size",),
             "dp": ("data_parallel_size",), "gpu_memory_utilization": ("gpu_memory_utilization",),
             "max_model_len": ("max_model_len", "max_seq_len"), "kv_cache_dtype": ("kv_cache_dtype",),
             "dtype": ("dtype",), "quantization": ("quantization",), "max_num_seqs": ("max_num_seqs",),
             "max_num_batched_tokens": ("max_num_batched_tokens",), "block_size": ("block_size",),
             "enforce_eager": ("enforce_eager",), "enable_chunked_prefill": ("enable_chunked_prefill",),
             "kv_cache_memory_bytes": ("kv_cache_memory_bytes", "kv_cache_memory"),
             "num_gpu_blocks_override": ("num_gpu_blocks_override",), "swap_space": ("swap_space",)},
    "sglang": {"model": ("model_path", "model"), "tp": ("tp_size", "tensor_parallel_size"), "pp": ("pp_size",),
               "dp": ("dp_size",), "mem_fraction_static": ("mem_fraction_static",),
               "max_model_len": ("context_length", "context_len"), "kv_cache_dtype": ("kv_cache_dtype",),
               "dtype": ("dtype",), "quantization": ("quantization",),
               "max_num_seqs": ("max_running_requests",), "max_num_batched_tokens": ("chunked_prefill_size",),
               "block_size": ("page_size",), "max_total_tokens": ("max_total_tokens",),
               "cuda_graph_max_bs": ("cuda_graph_max_bs",), "disable_cuda_graph": ("disable_cuda_graph",),
               "enable_dp_attention": ("enable_dp_attention",)},
    "trtllm": {"model": ("model",), "tp": ("tensor_parallel_size",), "pp": ("pipeline_parallel_size",),
               "ep": ("moe_expert_parallel_size",), "free_gpu_memory_fraction": ("free_gpu_memory_fraction",),
               "max_model_len": ("max_seq_len",), "kv_cache_dtype": ("kv_cache_dtype",), "dtype": ("dtype",),
               "max_num_seqs": ("max_batch_size",), "max_num_batched_tokens": ("max_num_tokens",),
               "block_size": ("tokens_per_block",), "enable_dp_attention": ("enable_attention_dp",)},
}


@dataclass(frozen=True)
class EngineLog:
    """What one start-up log says: the engine, its version, its settings and its memory lines."""

    engine: str
    version: str | None
    version_evidence: str
    settings: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # setting -> where it was read
    logged: tuple[LoggedValue, ...] = ()
    gpu_name: str | None = None
    entry_point: str | None = None   # "serve" (API server) or "LLM" (the offline class) when the log shows it
    notes: tuple[str, ...] = ()

    @property
    def deciding_rank(self) -> str | None:
        """The worker whose KV memory is the smallest: the engine sizes every rank's pool to it
        (vLLM takes the minimum of the ranks' available memory; SGLang the minimum free memory)."""
        kv = [v for v in self.logged if v.key in ("kv_cache_gib", "kv_tokens")]
        return min(kv, key=lambda v: v.value).rank if kv else None

    def line(self, key: str) -> LoggedValue | None:
        """The printed ``key``: pool sizes are the minimum over ranks; a memory term comes from the
        rank that decides the pool when that rank printed it, else from the first that did."""
        vals = [v for v in self.logged if v.key == key]
        if not vals:
            return None
        if key in POOL_KEYS:
            return min(vals, key=lambda v: v.value)
        rank = self.deciding_rank
        return next((v for v in vals if v.rank == rank), vals[0])

    def value(self, key: str) -> float | None:
        lv = self.line(key)
        return lv.value if lv else None

    def setting(self, name: str, default: Any = None) -> Any:
        """A setting by its planner-level name (``tp``, ``max_model_len``...), as this engine spells it."""
        for k in SETTING_NAMES.get(self.engine, {}).get(name, (name,)):
            if self.settings.get(k) is not None:
                return self.settings[k]
        return default

    def setting_evidence(self, name: str) -> str:
        for k in SETTING_NAMES.get(self.engine, {}).get(name, (name,)):
            if self.settings.get(k) is not None:
                return self.evidence.get(k, "")
        return ""

    @property
    def model_id(self) -> str | None:
        m = self.setting("model")
        return str(m) if m else None


POOL_KEYS = ("kv_cache_tokens", "gpu_blocks", "kv_tokens", "kv_cache_gib", "max_concurrency")


# ---- splitting printed argument lists ---------------------------------------------------------
def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside quotes and brackets: "a=1, b=[1, 2], c='x,y'" -> 3 parts."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def _literal(text: str) -> Any:
    """A printed value as Python data where it is a literal; 'torch.bfloat16' -> 'bfloat16';
    other expressions (enums, objects) stay as their text."""
    t = text.strip()
    if t.startswith("torch."):
        return t[len("torch."):]
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return t


def parse_kwargs(text: str) -> dict[str, Any]:
    """``k1=v1, k2=v2`` as printed by vLLM's config line, Namespace(...) or ServerArgs(...)."""
    out: dict[str, Any] = {}
    for part in split_top_level(text):
        k, eq, v = part.partition("=")
        k = k.strip()
        if eq and re.fullmatch(r"[A-Za-z_]\w*", k):
            out[k] = _literal(v)
    return out


def _enclosed(text: str, start: int) -> str:
    """The text from ``start`` (just after an opening bracket) to its matching close (to the end
    of ``text`` when a paste cut it off)."""
    depth, quote = 1, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return text[start:]


# ---- where settings are printed -------------------------------------------------------------
# (engine, label, regex that ends right after the opening bracket or the start of the list)
SETTING_BLOCKS: tuple[tuple[str, str, str], ...] = (
    ("vllm", "the engine's printed config", r"LLM engine \(v[^)]*\) with config:?[ \t]*(?:\n[~`]{3}[^\n]*\n)?"),
    ("vllm", "the 'non-default args' line", r"non-default args: \{"),
    ("vllm", "the printed arguments (Namespace)", r"args: Namespace\("),
    ("sglang", "the printed server_args", r"server_args=ServerArgs\("),
    ("trtllm", "the printed LLM Args", r"LLM Args:[ \t]*\n?"),
)


# Settings the memory lines state (used when no printed configuration gives them).
MEMORY_LINE_SETTINGS = {
    "vllm": (("gpu_memory_utilization", r"gpu_memory_utilization \(([0-9.]+)\)"),
             ("gpu_memory_utilization", r"gpu_memory_utilization\s+([0-9.]+)"),
             ("max_model_len", r"Maximum concurrency for ([0-9,]+) tokens per request"),
             ("max_model_len", r"max seq len \(([0-9]+)\)")),
    "sglang": (("max_model_len", r"context_len=([0-9]+)"),),
    "trtllm": (("free_gpu_memory_fraction", r"fraction is set ([0-9.]+)"),
               ("max_seq_len", r"\bmax_seq_len=([0-9]+), max_num_requests"),
               ("max_num_tokens", r"max_num_requests=[0-9]+, max_num_tokens=([0-9]+)"),
               ("max_batch_size", r"max_num_tokens=[0-9]+, max_batch_size=([0-9]+)"),
               ("kv_cache_dtype", r'against kv_cache_dtype="(\w+)"'),
               ("tokens_per_block", r"tokens_per_block=([0-9]+)")),
}
_LOG_START = re.compile(r"^\s*(INFO|WARNING|WARN|DEBUG|ERROR|CRITICAL|\(|\[|\$|#|```|>)")


def _to_line_end(text: str, start: int) -> str:
    """From ``start`` to the end of its line, joining lines a paste hard-wrapped (continuation lines
    carry no log prefix) without the line breaks."""
    lines = text[start:].split("\n")
    out = [lines[0]]
    for ln in lines[1:]:
        if not ln.strip() or _LOG_START.match(ln):
            break
        out.append(ln)
    return "".join(out)


def _block_settings(text: str) -> list[tuple[str, str, dict]]:
    out = []
    for engine, label, pat in SETTING_BLOCKS:
        m = re.search(pat, text)
        if not m:
            continue
        chunk = _to_line_end(text, m.end())
        if pat.endswith("{"):
            val = _literal("{" + _enclosed(chunk, 0) + "}")
            settings = val if isinstance(val, dict) else {}
        elif pat.endswith("("):
            settings = parse_kwargs(_enclosed(chunk, 0))
        elif engine == "trtllm":  # LLM Args: key=value pairs separated by spaces, on the line after
            settings = _space_kwargs(chunk)
        else:  # the config line runs to the end of its line
            settings = parse_kwargs(chunk)
        out.append((engine, label, settings))
    return out


def _space_kwargs(text: str) -> dict[str, Any]:
    """TensorRT-LLM's 'LLM Args:' dump, ``model='...' tensor_parallel_size=4 kv_cache_config=KvCacheConfig(...)``:
    the top-level pairs, and the KV cache config's own (``free_gpu_memory_fraction``, ``dtype`` as
    ``kv_cache_dtype``, ``tokens_per_block``)."""
    out: dict[str, Any] = {}
    for part in split_top_level(text, " "):
        k, eq, v = part.partition("=")
        if not eq or not re.fullmatch(r"\w+", k):
            continue
        if v.startswith("KvCacheConfig("):
            inner = parse_kwargs(_enclosed(v[v.index("(") + 1:], 0))
            for name, target in (("free_gpu_memory_fraction", "free_gpu_memory_fraction"), ("dtype", "kv_cache_dtype"),
                                 ("tokens_per_block", "tokens_per_block")):
                if inner.get(name) not in (None, "auto"):
                    out[target] = inner[name]
            continue
        out[k] = _literal(v)
    return out


def _command_lines(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(engine, argv) of every ``vllm serve`` / api_server / sglang.launch_server command."""
    joined, buf = [], ""
    for ln in lines:
        s = ln.rstrip()
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        joined.append(buf + s)
        buf = ""
    out = []
    for ln in joined:
        m = re.search(r"(vllm serve\s|vllm\.entrypoints\.openai\.api_server|sglang\.launch_server|"
                      r"sglang serve\s|trtllm-serve\s)(.*)", ln)
        if not m:
            continue
        try:
            argv = shlex.split(m.group(2))
        except ValueError:
            argv = m.group(2).split()
        engine = "sglang" if "sglang" in m.group(1) else "trtllm" if "trtllm" in m.group(1) else "vllm"
        out.append((engine, argv))
    return out


def parse_argv(engine: str, argv: list[str]) -> dict[str, Any]:
    """Known flags of a command line (``--max-model-len 8192``, ``--max_model_len=8192``)."""
    flags = {"vllm": VLLM_FLAGS, "sglang": SGLANG_FLAGS, "trtllm": TRTLLM_FLAGS}[engine]
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if not tok.startswith("-"):
            if engine in ("vllm", "trtllm") and "model" not in out and not tok.startswith(("&", "|", ">")):
                out["model"] = tok  # `vllm serve MODEL` / `trtllm-serve MODEL`: the positional argument
            continue
        name, eq, val = tok.lstrip("-").partition("=")
        name = name.replace("_", "-")
        target = flags.get(name)
        if target is None:
            continue
        if target is True:
            out[name.replace("-", "_")] = True
            continue
        if not eq:
            if i >= len(argv) or argv[i].startswith("--"):
                continue
            val = argv[i]
            i += 1
        out[target] = _literal(val) if not re.fullmatch(r"[A-Za-z][\w./-]*", val) else val
    return out


def _normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """'torch.bfloat16' -> 'bfloat16'; 'LoadFormat.AUTO' -> 'auto' (enum reprs as their value)."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, str):
            v = v[len("torch."):] if v.startswith("torch.") else v
            m = re.fullmatch(r"[A-Z]\w*\.([A-Z0-9_]+)", v)
            v = m.group(1).lower() if m else v
        out[k] = v
    return out


def _rank(line: str) -> str:
    m = _RANK.search(line)
    if not m:
        return ""
    if m.group(4):
        return m.group(4)
    return f"{m.group(1)} " + (f"rank={m.group(2)}" if m.group(2) else f"pid={m.group(3)}")


def _detect_engine(text: str) -> str | None:
    scores = {"vllm": 0, "sglang": 0, "trtllm": 0}
    for engine, _, pat in LINE_PATTERNS:
        if re.search(pat, text):
            scores[engine] += 1
    for engine, _, pat in SETTING_BLOCKS:
        if re.search(pat, text):
            scores[engine] += 2
    if re.search(r"\bvllm\b|VllmWorker|gpu_model_runner", text):
        scores["vllm"] += 1
    if re.search(r"\bsglang\b|launch_server", text):
        scores["sglang"] += 1
    if re.search(r"TensorRT[- ]LLM|\[TRT-LLM\]|trtllm-serve|tensorrt_llm", text):
        scores["trtllm"] += 2
    best = max(scores, key=scores.get)
    return best if scores[best] else None


def _version(text: str, engine: str) -> tuple[str | None, str]:
    for eng, pat in VERSION_PATTERNS:
        if eng != engine:
            continue
        m = re.search(pat, text)
        if m:
            return m.group(1).rstrip(".,"), f"the log says '{m.group(0)}'"
    return None, "not in the log"


def parse_log(text: str, gpu_names: tuple[str, ...] = ()) -> EngineLog:
    """Parse a start-up log. ``gpu_names``: card names to look for (the GPU profiles' NVML names).

    Raises PlannerInputError when the text is no serving-engine log or holds no KV-cache line.
    """
    if not isinstance(text, str) or not text.strip():
        raise PlannerInputError("log", "is empty", "paste or point at a vLLM, SGLang or TensorRT-LLM start-up log")
    if len(text) > MAX_LOG_BYTES:
        raise PlannerInputError("log", f"is {len(text):,} characters, more than a start-up log "
                                f"({MAX_LOG_BYTES:,})", "keep the lines from the start to 'GPU KV cache size'")
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    engine = _detect_engine(text.replace("**", "").replace("`", ""))
    if engine is None:
        raise PlannerInputError("log", "is not a vLLM, SGLang or TensorRT-LLM start-up log (no engine line recognised)",
                                "paste the engine's own output from the start to the KV-cache size line")
    lines = text.split("\n")
    logged = []
    for no, ln in enumerate(lines, 1):
        plain = ln.replace("**", "").replace("`", "")  # markdown emphasis in pasted logs
        seen: set[str] = set()
        for eng, key, pat in LINE_PATTERNS:
            if eng != engine or key in seen:
                continue
            m = re.search(pat, plain)
            if m:
                seen.add(key)
                logged.append(LoggedValue(key, float(m.group(1).replace(",", "")), no, ln.strip(), _rank(ln)))
    if engine == "trtllm":  # the first 'Allocated ... for max tokens' is the profiling pass's temporary cache
        est = [v.line_no for v in logged if v.key in ("kv_cache_gib", "peak_gib")]
        alloc = sorted({v.line_no for v in logged if v.key == "kv_pool_gib"})
        if not est and len(alloc) > 1:  # no profiling line: the first of several 'Allocated' lines is the temporary one
            est = [alloc[0]]
        if est:
            logged = [v for v in logged if v.key not in ("kv_cache_tokens", "kv_pool_gib") or v.line_no > min(est)]
    settings, evidence = {}, {}
    sources = [(label, s) for eng, label, s in _block_settings(text) if eng == engine]
    sources += [(f"the command line ({' '.join(argv[:2])} ...)", parse_argv(eng, argv))
                for eng, argv in _command_lines(lines) if eng == engine]
    for label, s in reversed(sources):  # earlier sources (the printed config) win
        for k, v in _normalise(s).items():
            settings[k] = v
            evidence[k] = label
    for key, pat in MEMORY_LINE_SETTINGS.get(engine, ()):
        m = re.search(pat, text)
        if m and key not in settings:
            settings[key] = _literal(m.group(1).replace(",", ""))
            evidence[key] = f"the line '{m.group(0).strip()}'"
    version, ev = _version(text, engine)
    gpu = next((g for g in gpu_names if g and g in text), None)
    entry = None
    if re.search(r"\bLLM\(|from vllm import LLM", text):
        entry = "LLM"
    elif re.search(r"vllm serve|api_server|API server version|launch_server|non-default args", text):
        entry = "serve"
    return EngineLog(engine, version, ev, settings, evidence, tuple(logged), gpu, entry)
