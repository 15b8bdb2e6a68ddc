"""In-code GPU, format table and runtime for unit tests that must not depend on profile files."""

from planner.formats import FormatTable
from planner.gpus import GpuSpec
from planner.runtime import Runtime

TABLE = FormatTable.from_dict({
    "storage_types": {"bf16": {"bits_per_weight": 16, "source": "bfloat16"},
                      "q4": {"bits_per_weight": 4.5, "source": "4 bits + fp16 scale per 32"}},
    "formats": {"bf16": {"family": "float", "roles": {"default": "bf16"}, "compute_dtype": "bf16"},
                "q4": {"family": "gptq", "roles": {"default": "q4", "embed": "bf16", "lm_head": "bf16"},
                       "compute_dtype": "fp16"}},
})
# H100 SXM datasheet figures (NVIDIA H100 datasheet): 3.35 TB/s, 989.4 TFLOP/s dense bf16, NVLink 450 GB/s each way
H100 = GpuSpec(id="H100-test", display_name="H100 (test)", vendor="nvidia", memory_bytes=80e9,
               memory_bandwidth_bytes_per_s=3.35e12, peak_flops=(("bf16", 989.4e12), ("fp16", 989.4e12)),
               interconnect_bytes_per_s=450e9, price_usd_per_hour=3.0, nvml_total_memory_bytes=81559 * 2**20)
RUNTIME = Runtime(cuda_context_bytes=0.5 * 2**30, paged_non_torch_bytes=0.2 * 2**30, paged_cudagraph_bytes=0.0,
                  nccl_bytes=0.5 * 2**30)
