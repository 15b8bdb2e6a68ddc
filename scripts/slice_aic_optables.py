"""Cut the measured per-operator tables that planner/optables.py reads out of an aiconfigurator copy.

    python scripts/slice_aic_optables.py AIC [--out profiles/reference]

``AIC`` is a checkout of ai-dynamo/aiconfigurator (a work tree, or a git directory, from which the
files are read at commit 095f58a5). Writes ``aic_vllm<ver>_<gpu>_<op>_<dtype>.csv.gz`` (vLLM) and
``aic_sglang-<ver>_<gpu>_<op>_<dtype>.csv.gz`` (SGLang) with the selection profiles/reference/README.md describes; latencies are rounded to 5 significant digits
(the collector's own repeat-to-repeat spread is about 1 %). Needs pyarrow (a parquet reader); the
planner itself only ever reads the CSV.
"""

from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

import pandas as pd

COMMIT = "095f58a51c4ca8e61b66ec108d86f223f8d559ce"
DATA = "aic-core/src/aiconfigurator_core/systems/data"

# Per GPU, per table: the newest vLLM version whose directory holds native data (not a reuse.yaml
# pointer to another version). A100's gemm and attention 0.14 slices were already carried
# (aic_vllm014_*) and are not cut again.
SLICES = {
    "h100_sxm": {"gemm": "0.24.0", "attention": "0.24.0", "moe": "0.24.0", "mla": "0.24.0", "comm": "0.24.0"},
    "h200_sxm": {"gemm": "0.24.0", "attention": "0.24.0", "moe": "0.24.0", "mla": "0.24.0", "comm": "0.24.0"},
    "b200_sxm": {"gemm": "0.24.0", "attention": "0.24.0", "moe": "0.24.0", "mla": "0.24.0", "comm": "0.24.0"},
    "gb200": {"gemm": "0.24.0", "attention": "0.24.0", "moe": "0.24.0", "mla": "0.24.0", "comm": "0.24.0"},
    "rtx_pro_6000_server": {"gemm": "0.24.0", "attention": "0.24.0", "moe": "0.24.0", "mla": "0.24.0", "comm": "0.24.0"},
    "l40s": {"gemm": "0.24.0", "attention": "0.24.0", "moe": "0.24.0", "mla": "0.24.0", "comm": "0.22.0"},
    "a100_sxm": {"moe": "0.14.0", "comm": "0.14.0"},
}
# SGLang's own tables (planner/optables.py reads them for SGLang plans): one release with native data for every op
# on both Hopper GPUs its published end-to-end runs were served on; 0.5.9 is the release of AIC's DeepSeek rows
SGLANG_SLICES = {"h100_sxm": "0.5.9", "h200_sxm": "0.5.9"}
SGLANG_OPS = ("gemm", "attention", "moe", "mla", "mla_bmm", "comm")
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8_block", "nvfp4": "nvfp4"}
KV_DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}
MOE_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8_block", "int4_wo": "w4a16",
              "w4a16_mxfp4": "w4a16_mxfp4", "nvfp4": "nvfp4", "w4a8_mxfp4_mxfp8": "w4a8_mxfp4_mxfp8"}
MOE_DISTRIBUTIONS = ("balanced", "power_law_1.01", "power_law_1.2")
ATTN_COLS = ["batch_size", "isl", "step", "num_heads", "num_key_value_heads", "head_dim"]
MOE_COLS = ["num_tokens", "hidden_size", "inter_size", "num_experts", "topk", "moe_tp_size", "moe_ep_size",
            "distribution"]
MLA_COLS = ["gemm_type", "num_heads", "batch_size", "isl", "step"]


def read_parquet(aic: Path, rel: str) -> pd.DataFrame:
    path = aic / DATA / rel
    if path.is_file():
        return pd.read_parquet(path)
    blob = subprocess.run(["git", "-C", str(aic), "show", f"{COMMIT}:{DATA}/{rel}"], check=True,
                          capture_output=True).stdout
    return pd.read_parquet(io.BytesIO(blob))


def write(df: pd.DataFrame, cols: list[str], out: Path, name: str) -> None:
    df = df.rename(columns={"latency": "latency_ms"})
    df = df[cols + ["latency_ms"]].sort_values(cols).reset_index(drop=True)
    df["latency_ms"] = df["latency_ms"].map(lambda v: float(f"{v:.5g}"))
    df.to_csv(out / name, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"{name:62s} {len(df):7,d} rows {(out / name).stat().st_size / 1e3:8.1f} kB")


def deduplicate(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Where two kernels were timed on one shape, keep the faster (the one a tuned engine picks)."""
    return df.sort_values("latency").drop_duplicates(keys, keep="first")


def cut(aic: Path, gpu: str, op: str, version: str, out: Path) -> None:
    pre = f"aic_vllm{version.split('.')[0]}{version.split('.')[1]}_{gpu}"
    if op == "gemm":
        d = read_parquet(aic, f"{gpu}/gemm/vllm/{version}/gemm_perf.parquet")
        for src, dt in GEMM_DTYPES.items():
            if (d["gemm_dtype"] == src).any():  # nvfp4: Blackwell only
                write(d[d["gemm_dtype"] == src], ["m", "n", "k"], out, f"{pre}_gemm_{dt}.csv.gz")
    elif op == "attention":
        for phase in ("context", "generation"):
            d = read_parquet(aic, f"{gpu}/attention/vllm/{version}/{phase}_attention_perf.parquet")
            d = d[(d["window_size"] == 0) & d["head_dim"].isin([64, 128])]
            for src, dt in KV_DTYPES.items():
                write(d[d["kv_cache_dtype"] == src], ATTN_COLS, out, f"{pre}_{phase}_attention_{dt}.csv.gz")
    elif op == "moe":
        d = read_parquet(aic, f"{gpu}/moe/vllm/{version}/moe_perf.parquet")
        d = d[d["distribution"].isin(MOE_DISTRIBUTIONS)]
        for src, dt in MOE_DTYPES.items():
            if (d["moe_dtype"] == src).any():
                part = d[d["moe_dtype"] == src]
                # NVFP4 experts were timed through three kernels on one shape (FlashInfer's TRT-LLM monolithic
                # and modular experts, FlashInfer CUTLASS): the fastest is kept, as for Marlin below
                write(deduplicate(part, MOE_COLS) if src == "nvfp4" else part, MOE_COLS, out, f"{pre}_moe_{dt}.csv.gz")
        # vLLM's Marlin W4A16 experts (fused_marlin_moe.MarlinExperts) of every 4-bit format AIC timed
        # through them (int4 group 128, Kimi-K3's MXFP4): the kernel VLLM_MXFP4_USE_MARLIN=1 selects
        # for gpt-oss's MXFP4 on Hopper, where AIC timed vLLM's default Triton kernel (planner/opstep.py)
        if "kernel_source" in d:
            marlin = d[d["kernel_source"].str.contains("marlinexperts", case=False)]
            if len(marlin):
                write(deduplicate(marlin, MOE_COLS), MOE_COLS, out, f"{pre}_moe_w4a16_marlin.csv.gz")
    elif op == "mla":
        for phase in ("context", "generation"):
            d = read_parquet(aic, f"{gpu}/mla/vllm/{version}/mla_{phase}_module_perf.parquet")
            d = d[(d["mla_dtype"] == "bfloat16") & d["gemm_type"].isin(["bfloat16", "fp8_block"])]
            d = d.assign(gemm_type=d["gemm_type"].map(GEMM_DTYPES))
            for src, dt in KV_DTYPES.items():
                part = deduplicate(d[d["kv_cache_dtype"] == src], MLA_COLS)
                if len(part):
                    write(part, MLA_COLS, out, f"{pre}_mla_{phase}_module_{dt}.csv.gz")
    elif op == "comm":
        d = read_parquet(aic, f"{gpu}/comm/vllm/{version}/custom_allreduce_perf.parquet")
        write(d, ["num_gpus", "message_size", "backend"], out, f"{pre}_allreduce_bf16.csv.gz")


def cut_sglang(aic: Path, gpu: str, op: str, version: str, out: Path) -> None:
    """SGLang's tables: the same columns as vLLM's where the op is the same; its MLA is the attention kernel
    alone (``mla_{context,generation}``) with the absorbed BMMs around it (``mla_bmm``), which
    planner/optables.py composes with the projection GEMMs as AIC's sdk/models/deepseek.py does."""
    pre = f"aic_sglang-{version}_{gpu}"
    root = f"{gpu}/{op}/sglang/{version}"
    if op == "gemm":
        d = read_parquet(aic, f"{root}/gemm_perf.parquet")
        for src, dt in GEMM_DTYPES.items():
            if (d["gemm_dtype"] == src).any():
                write(deduplicate(d[d["gemm_dtype"] == src], ["m", "n", "k"]), ["m", "n", "k"], out,
                      f"{pre}_gemm_{dt}.csv.gz")
    elif op == "attention":
        for phase in ("context", "generation"):
            d = read_parquet(aic, f"{root}/{phase}_attention_perf.parquet")
            # attention computed in bf16 (the fp8 attn_dtype rows are FP8 attention math, not SGLang's default)
            d = d[(d["attn_dtype"] == "bfloat16") & d["head_dim"].isin([64, 128])]
            for src, dt in KV_DTYPES.items():
                write(deduplicate(d[d["kv_cache_dtype"] == src], ATTN_COLS), ATTN_COLS, out,
                      f"{pre}_{phase}_attention_{dt}.csv.gz")
    elif op == "moe":
        d = read_parquet(aic, f"{root}/moe_perf.parquet")
        d = d[d["distribution"].isin(MOE_DISTRIBUTIONS)]
        for src, dt in MOE_DTYPES.items():
            if (d["moe_dtype"] == src).any():
                write(deduplicate(d[d["moe_dtype"] == src], MOE_COLS), MOE_COLS, out, f"{pre}_moe_{dt}.csv.gz")
    elif op == "mla":
        cols = ["num_heads", "batch_size", "isl", "step"]
        for phase in ("context", "generation"):
            d = read_parquet(aic, f"{root}/{phase}_mla_perf.parquet")
            d = d[d["mla_dtype"] == "bfloat16"]
            for src, dt in KV_DTYPES.items():
                # one per-rank head count was timed at several TP sizes (the same kernel call): the faster kept
                write(deduplicate(d[d["kv_cache_dtype"] == src], cols), cols, out, f"{pre}_mla_{phase}_{dt}.csv.gz")
    elif op == "mla_bmm":
        d = read_parquet(aic, f"{root}/mla_bmm_perf.parquet")
        for src, dt in GEMM_DTYPES.items():
            if (d["bmm_dtype"] == src).any():
                cols = ["op_name", "num_tokens", "num_heads"]
                write(deduplicate(d[d["bmm_dtype"] == src], cols), cols, out, f"{pre}_mla_bmm_{dt}.csv.gz")
    elif op == "comm":
        d = read_parquet(aic, f"{root}/custom_allreduce_perf.parquet")
        write(d, ["num_gpus", "message_size", "backend"], out, f"{pre}_allreduce_bf16.csv.gz")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("aic", type=Path, help="ai-dynamo/aiconfigurator checkout (work tree or git directory)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "profiles" / "reference")
    a = ap.parse_args()
    for gpu, ops in SLICES.items():
        for op, version in ops.items():
            cut(a.aic, gpu, op, version, a.out)
    for gpu, version in SGLANG_SLICES.items():
        for op in SGLANG_OPS:
            cut_sglang(a.aic, gpu, op, version, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
