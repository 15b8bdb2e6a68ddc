"""Every bundled profile loads and cites a source for every figure."""

import json
import re

import pytest

from planner import profiles
from planner.gpus import GpuSpec

GPU_FILES = sorted((profiles.ROOT / "gpus").glob("*.json"))
REQUIRED_GPUS = {"H100-SXM", "H100-PCIe", "H200", "B200", "A100-SXM-40GB", "A100-SXM-80GB", "L40S", "L4", "A10G",
                 "T4", "RTX-4090", "RTX-3090", "MI300X",
                 "GB200", "B300", "H20", "L20", "RTX-5090", "RTX-PRO-6000-SE", "MI325X", "MI355X", "Gaudi3"}
# GPUs whose CUDA-visible total (cudaMemGetInfo / hipMemGetInfo, vLLM's total_gpu_memory) was read off a public log;
# L20 (no log found), Gaudi 3 (not CUDA) and the Apple entry (unified memory) are the exceptions
CUDA_MEASURED = REQUIRED_GPUS - {"L20", "Gaudi3"}
HOPPER_BLACKWELL_DC = ("H100-SXM", "H100-PCIe", "H200", "H20", "B200", "B300", "GB200")
PCIE_X16_ONE_WAY = {"3.0": 16e9, "4.0": 32e9, "5.0": 64e9}  # 8/16/32 GT/s x 16 lanes, rounded up to whole GB/s


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
    ic = ds.get("interconnect") or {}
    figures += [ic[k] for k in ("bandwidth_bytes_per_s", "bidirectional_bytes_per_s") if ic.get(k)]
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


def test_the_new_gpus_carry_a_measured_cuda_total():
    gpus = profiles.gpus()
    missing = sorted(g for g in CUDA_MEASURED if not gpus[g].cuda_total_memory_bytes)
    assert not missing, f"no measured CUDA total for {missing}"
    assert all(gpus[g].memory_source == "measured (CUDA total)" for g in CUDA_MEASURED)


@pytest.mark.parametrize("gid", sorted(CUDA_MEASURED))
def test_measured_totals_are_consistent_with_each_other_and_the_label(gid):
    g = profiles.gpu(gid)
    cuda, nvml = g.cuda_total_memory_bytes, g.nvml_total_memory_bytes
    # below the label read as GiB (HBM labels are binary) and not a unit slip below it (GB vs GiB, MiB vs MB)
    assert cuda < g.memory_bytes / 1e9 * 2**30
    assert cuda > 0.9 * g.memory_bytes
    if nvml:
        # the driver keeps a little of the framebuffer out of the CUDA total: between 0 and 3 % of NVML's figure
        assert 0 < nvml - cuda < 0.03 * nvml, f"NVML {nvml / 2**20:.0f} MiB vs CUDA {cuda / 2**20:.0f} MiB"


@pytest.mark.parametrize("path", GPU_FILES, ids=lambda p: p.stem)
def test_interconnect_is_one_direction(path):
    ic = json.loads(path.read_text())["datasheet"].get("interconnect") or {}
    if not ic.get("bandwidth_bytes_per_s"):
        return
    one_way = ic["bandwidth_bytes_per_s"]["value"]
    if ic.get("bidirectional_bytes_per_s"):  # the datasheet's both-directions figure, halved
        assert one_way <= ic["bidirectional_bytes_per_s"]["value"] / 2
    m = re.match(r"PCIe (\d\.\d) x16", ic["name"])
    if m:  # PCIe lane arithmetic: a both-directions figure would be twice this
        assert one_way <= PCIE_X16_ONE_WAY[m.group(1)]


@pytest.mark.parametrize("gid", HOPPER_BLACKWELL_DC)
def test_dense_fp8_is_twice_dense_bf16_on_hopper_and_blackwell(gid):
    g = profiles.gpu(gid)
    assert g.has_native("fp8") and g.has_native("bf16")
    assert g.flops("fp8") == pytest.approx(2 * g.flops("bf16"))
    if gid in ("B200", "GB200"):  # FP4 doubles FP8 again on Blackwell (not on Blackwell Ultra, whose FP4 grew more)
        assert g.flops("fp4") == pytest.approx(2 * g.flops("fp8"))


def test_blackwell_ultra_int8_is_not_planned_at_the_fp8_rate():
    # B300 cut INT8 to a small fraction of B200's; without its own entry int8 would fall back to the fp8 peak
    b300 = profiles.gpu("B300")
    assert b300.has_native("int8") and b300.flops("int8") < b300.flops("fp8") / 10


def test_nvml_names_are_unique_and_find_their_profile():
    seen = {}
    for gid, g in profiles.gpus().items():
        for name in g.nvml_names:
            assert name not in seen, f"{name!r} in both {seen[name]} and {gid}"
            seen[name] = gid
            assert profiles.gpu_for_nvml_name(name).id == gid
    assert profiles.gpu_for_nvml_name("NVIDIA GeForce RTX 5090").id == "RTX-5090"
    assert profiles.gpu_for_nvml_name("NVIDIA B300 SXM6 AC").id == "B300"


def test_docs_list_every_gpu_with_its_measured_totals():
    # docs/gpu-sources.md's summary table is rendered from the profiles: a profile edit without the docs fails here
    doc = (profiles.ROOT.parent / "docs" / "gpu-sources.md").read_text()
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split(" | ")]
                              for line in doc.splitlines() if line.startswith("| "))}
    for gid, g in profiles.gpus().items():
        assert f"## {gid}: {g.display_name}" in doc
        row = rows[gid]
        for col, v in ((2, g.nvml_total_memory_bytes), (3, g.cuda_total_memory_bytes)):
            assert row[col] == (f"{round(v / 2**20):,} MiB ({v / 2**30:.2f} GiB)" if v else "—")
