"""Every bundled profile loads and cites a source for every figure."""

import json

import pytest

from planner import profiles
from planner.gpus import GpuSpec

GPU_FILES = sorted((profiles.ROOT / "gpus").glob("*.json"))
REQUIRED_GPUS = {"H100-SXM", "H100-PCIe", "H200", "B200", "A100-SXM-40GB", "A100-SXM-80GB", "L40S", "L4", "A10G",
                 "T4", "RTX-4090", "RTX-3090", "MI300X"}


def test_the_issue_s_gpus_are_bundled_with_an_apple_unified_memory_entry():
    have = set(profiles.gpus())
    assert REQUIRED_GPUS <= have
    assert any(g.unified_memory and g.vendor == "apple" for g in profiles.gpus().values())


@pytest.mark.parametrize("path", GPU_FILES, ids=lambda p: p.stem)
def test_gpu_profile_figures_each_cite_a_source(path):
    d = json.loads(path.read_text())
    g = GpuSpec.from_profile(d)
    assert g.id == path.stem
    ds = d["datasheet"]
    figures = [ds["memory_bytes"], ds["memory_bandwidth_bytes_per_s"], *ds["peak_flops_dense"].values()]
    figures += [ds["interconnect"]["bandwidth_bytes_per_s"]] if ds.get("interconnect") else []
    figures += list((d.get("measured") or {}).values())
    figures += [d["price_usd_per_gpu_hour"]] if d.get("price_usd_per_gpu_hour") else []
    for f in figures:
        assert f["value"] > 0 and len(f["source"]) > 10
    # datasheet and measured stay apart; a measured total is below the binary reading of the label
    if g.nvml_total_memory_bytes:
        assert g.nvml_total_memory_bytes <= g.memory_bytes / 1e9 * 2**30
    if g.cuda_total_memory_bytes:
        assert g.cuda_total_memory_bytes < (g.nvml_total_memory_bytes or float("inf"))
    # a 16-bit dense tensor peak is what every plan needs
    assert g.flops("bf16") > 0 and g.flops("fp16") > 0


def test_sparse_figures_were_halved():
    # the H100 SXM datasheet prints 1,979 TFLOPS bf16 "with sparsity": the dense peak is half
    h = profiles.gpu("H100-SXM")
    assert h.flops("bf16") == pytest.approx(989.5e12)
    assert profiles.gpu("NVIDIA H100 80GB HBM3").id == "H100-SXM"  # NVML name lookup


@pytest.mark.parametrize("name", profiles.model_names())
def test_model_profile_has_its_upstream_source(name):
    src = profiles.model_source(name)
    assert src.get("repo") and src.get("url"), f"profiles/models/{name}/source.json must name repo and url"
    assert "verbatim" in src
    profiles.load_model(name)  # parses
