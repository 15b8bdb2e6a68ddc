"""llama.cpp partial offload (``api.gguf_offload``) against values derived by hand.

Llama-3.1-8B in bf16 with an fp16 KV cache of 4096 tokens, on in-code GPUs of chosen sizes (the
runtime of tests/synthetic.py: 0.5 GiB CUDA context):

  per layer   218,112,000 x 2 B = 436,224,000 B of weights + 4096 x 4,096 B = 16,777,216 B of KV
              (131,072 B per token / 32 layers) = 453,001,216 B; 32 layers: 14,496,038,912 B
  head        final norm 8,192 B + lm_head 1,050,673,152 B = 1,050,681,344 B
  embedding   1,050,673,152 B, always in host memory
  compute     one 512-token forward: 512 x 102,400 B + one row of fp32 logits 128,256 x 4 B = 52,941,824 B
  room        GPU memory - 536,870,912 B context - 52,941,824 B compute
"""

from dataclasses import replace

import pytest
from synthetic import H100, RUNTIME, TABLE
from test_kv_known import LLAMA31_8B

from planner import api
from planner.spec import ModelSpec

SPEC = ModelSpec.from_hf_config(LLAMA31_8B, "llama-3.1-8b")
FIXED = 536_870_912 + 52_941_824
LAYERS = 14_496_038_912
HEAD = 1_050_681_344
EMBED = 1_050_673_152


@pytest.fixture
def gpu_of(monkeypatch):
    """gguf_offload on an in-code GPU whose allocatable memory is FIXED + ``room`` bytes."""
    monkeypatch.setattr(api.profiles, "runtime", lambda: RUNTIME)
    monkeypatch.setattr(api.profiles, "formats", lambda: TABLE)

    def run(room: float, spec=SPEC, context=4096, **kw):
        g = replace(H100, nvml_total_memory_bytes=FIXED + room)
        monkeypatch.setattr(api.profiles, "gpu", lambda name: g)
        return api.gguf_offload(spec, "H100-test", weights="bf16", context=context, kv_dtype="fp16", **kw)
    return run


def test_everything_fits_the_head_goes_on_the_gpu_the_embedding_stays_on_the_host(gpu_of):
    r = gpu_of(LAYERS + HEAD)  # exactly enough for every layer and the head
    assert (r["gpu_layers"], r["cpu_layers"], r["output_head_on_gpu"]) == (32, 0, True)
    assert r["gpu_bytes"] == LAYERS + HEAD + FIXED
    # host: all weights 16,060,522,496 B + KV 536,870,912 B - what went to the GPU = the embedding table
    assert r["cpu_bytes"] == EMBED
    assert (r["embedding_bytes_on_cpu"], r["weight_bytes_total"], r["kv_bytes_total"]) == (
        EMBED, 16_060_522_496, 536_870_912)
    assert r["gpu_capacity_bytes"] == FIXED + LAYERS + HEAD and r["unified_memory"] is False
    assert (r["layers"], r["context"], r["batch"], r["weights_format"]) == (32, 4096, 1, "bf16")


def test_every_layer_fits_but_not_the_head_so_the_head_stays_on_the_host(gpu_of):
    r = gpu_of(LAYERS + HEAD - 1)  # one byte short of the head
    assert (r["gpu_layers"], r["cpu_layers"], r["output_head_on_gpu"]) == (32, 0, False)
    assert r["gpu_bytes"] == LAYERS + FIXED
    assert r["cpu_bytes"] == EMBED + HEAD


def test_partial_offload_keeps_whole_layers_from_the_first(gpu_of):
    # room 5e9 B: floor(5e9 / 453,001,216) = 11 layers (4,983,013,376 B; 12 would be 5,436,014,592 B)
    r = gpu_of(5e9)
    assert (r["gpu_layers"], r["cpu_layers"], r["output_head_on_gpu"]) == (11, 21, False)
    assert r["gpu_bytes"] == 11 * 453_001_216 + FIXED
    assert r["cpu_bytes"] == 16_060_522_496 + 536_870_912 - 11 * 453_001_216
    # exactly 11 layers of room still gives 11; one byte less gives 10
    assert gpu_of(11 * 453_001_216)["gpu_layers"] == 11
    assert gpu_of(11 * 453_001_216 - 1)["gpu_layers"] == 10
    # no room at all: no layer on the GPU, only the context and the compute buffer
    r0 = gpu_of(0)
    assert (r0["gpu_layers"], r0["cpu_layers"], r0["gpu_bytes"]) == (0, 32, FIXED)
    assert r0["cpu_bytes"] == 16_060_522_496 + 536_870_912


def test_the_kv_and_the_compute_buffer_scale_with_the_request(gpu_of):
    # batch 2 at 1024 tokens: KV 2 x 1024 x 131,072 = 268,435,456 B (8,388,608 B per layer); the
    # compute buffer at min(1024, 512) = 512 tokens is the same 52,941,824 B; 5e9 B of room takes
    # floor(5e9 / (436,224,000 + 8,388,608)) = 11 layers
    r = gpu_of(5e9, context=1024, batch=2)
    assert r["kv_bytes_total"] == 268_435_456
    assert r["gpu_layers"] == 11 and r["gpu_bytes"] == 11 * 444_612_608 + FIXED


def test_tied_embeddings_put_the_table_on_the_gpu_as_the_head(gpu_of):
    # tied: no lm_head tensor; the table doubles as the output head, so the head is the final norm
    # + the table (1,050,681,344 B, the same size) and the embedding still counts as host memory
    tied = ModelSpec.from_hf_config({**LLAMA31_8B, "tie_word_embeddings": True}, "tied")
    r = gpu_of(LAYERS + HEAD, spec=tied)
    assert (r["gpu_layers"], r["output_head_on_gpu"]) == (32, True)
    assert r["gpu_bytes"] == LAYERS + HEAD + FIXED
    assert r["weight_bytes_total"] == 16_060_522_496 - EMBED
    assert r["embedding_bytes_on_cpu"] == EMBED
