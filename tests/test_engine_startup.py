"""The engines' start-up arithmetic (planner/engines.py, planner/startup.py) on hand-derived values.

Every expected number is worked out in the comment beside it from the engine's own rule (the
citation is in profiles/engines/<engine>.json); none is computed by the code under test.
"""

import math
from dataclasses import replace

import pytest

from planner import api, profiles
from planner.engines import Version, scheduler_defaults
from planner.errors import PlannerInputError
from planner.memory import Deployment
from planner.startup import EngineSettings, kv_pool, sglang_fraction, sglang_tokens, vllm_startup

GIB = 2**30
VLLM = profiles.engine_table("vllm")
SGLANG = profiles.engine_table("sglang")


def era(version, table=VLLM):
    return table.resolve(version)[0]


def llama3_8b(max_len=8192):
    s = profiles.load_model("Llama-3.1-8B")
    return replace(s, max_position_embeddings=max_len, rope_scaling=())


# ---- versions and eras ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, parts", [("0.6.4.post1", (0, 6, 4)), ("v0.10.1.1", (0, 10, 1)),
                                         ("0.5.2rc2-cu126", (0, 5, 2)), ("0.6.5.dev", (0, 6, 5)), ("0.9", (0, 9, 0))])
def test_versions_compare_on_release_numbers(text, parts):
    assert Version.parse(text).parts == parts


@pytest.mark.parametrize("version, era_id", [
    ("0.2.4", "v0-torch-peak"), ("0.2.5", "v0-used-after-profile"), ("0.4.1", "v0-init-free-delta"),
    ("0.6.4.post1", "v0-peak-plus-nontorch"), ("0.6.5", "v0-memory-profiling"), ("0.7.2", "v0-memory-profiling"),
    ("0.8.3", "v1-peak-plus-nontorch"), ("0.8.5", "v1-70gib-tier"), ("0.9.0", "v1-not-a100"),
    ("0.10.1.1", "v1-profiled-increase"), ("0.11.0", "v1-snapshot-after-nccl"), ("0.20.0", "v1-graph-estimate-on"),
    ("0.33.0", "v1-startup-plan")])
def test_each_version_has_its_era(version, era_id):
    assert era(version).id == era_id


def test_newer_than_the_table_says_so_and_older_is_refused():
    e, v, note = VLLM.resolve("9.0.0")
    assert e.id == VLLM.eras[-1].id and "newer than" in note
    with pytest.raises(PlannerInputError, match="engine_version"):
        VLLM.resolve("0.1.0")
    with pytest.raises(PlannerInputError, match="engine_version"):
        VLLM.resolve("latest-ish")


def test_the_utilization_default_moves_to_0_92_in_0_20():
    # v0.19.0 vllm/config/cache.py:41 -> 0.90; v0.20.0 vllm/config/cache.py:66 -> 0.92 (PR #38284)
    assert era("0.19.1")["gpu_memory_utilization"] == 0.9
    assert era("0.20.0")["gpu_memory_utilization"] == 0.92


def test_every_era_rule_cites_a_source():
    for table in (VLLM, SGLANG):
        for e in table.eras:
            for name, rule in e.rules:
                assert rule.source.strip(), (e.id, name)


# ---- scheduler defaults ------------------------------------------------------------------------------
H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"


@pytest.mark.parametrize("version, entry, mem_gib, name, expected", [
    ("0.10.2", "serve", 79.2, H100, (1024, 8192)),    # >= 70 GiB and not A100: large serve
    ("0.10.2", "LLM", 79.2, H100, (1024, 16384)),     # large LLM class
    ("0.10.2", "serve", 79.3, A100, (256, 2048)),     # 'a100' in the name: small (0.9.0+)
    ("0.8.5", "serve", 79.3, A100, (1024, 8192)),     # 0.8.5: memory alone decides
    ("0.8.3", "serve", 79.3, A100, (1024, 2048)),     # 0.8.0-0.8.4: only H100/H200 names are large
    ("0.28.0", "serve", 178.3, "NVIDIA B200", (1024, 16384)),  # >= 160 GiB tier
    ("0.28.0", "serve", 139.8, "NVIDIA H200", (1024, 8192)),   # the H200 stays below 160 GiB
    ("0.10.2", "serve", 23.7, "NVIDIA GeForce RTX 3090", (256, 2048)),
])
def test_v1_scheduler_defaults(version, entry, mem_gib, name, expected):
    d = scheduler_defaults(era(version), entry, mem_gib * GIB, name, max_model_len=32768)
    assert (d.max_num_seqs, d.max_num_batched_tokens) == expected


def test_v0_defaults_follow_max_model_len_and_auto_chunked_prefill():
    # v0.2.0 vllm/config.py:279: max(max_model_len, 2048); 256 sequences
    d = scheduler_defaults(era("0.5.4"), "serve", 79 * GIB, H100, max_model_len=8192)
    assert (d.max_num_seqs, d.max_num_batched_tokens, d.chunked_prefill) == (256, 8192, False)
    d = scheduler_defaults(era("0.5.4"), "serve", 79 * GIB, H100, max_model_len=1024)
    assert d.max_num_batched_tokens == 2048
    # above 32,768 tokens chunked prefill switches on: 512 tokens (0.5.5 - 0.6.4), 2048 from 0.6.5
    assert scheduler_defaults(era("0.6.3"), "serve", 79 * GIB, H100, max_model_len=131072).max_num_batched_tokens == 512
    assert scheduler_defaults(era("0.6.5"), "serve", 79 * GIB, H100, max_model_len=131072).max_num_batched_tokens == 2048
    # ... but not for sliding-window or MLA models
    assert not scheduler_defaults(era("0.6.3"), "serve", 79 * GIB, H100, 131072, sliding_or_mla=True).chunked_prefill


def test_clamped_defaults_from_0_11_1():
    # v0.11.1 arg_utils.py:2013-2036: mnbt <= max_num_seqs x max_model_len; max_num_seqs <= mnbt
    d = scheduler_defaults(era("0.11.1"), "serve", 23.7 * GIB, "NVIDIA GeForce RTX 3090", max_model_len=4)
    assert (d.max_num_seqs, d.max_num_batched_tokens) == (256, 1024)  # min(256 x 4, 2048) = 1024
    assert scheduler_defaults(era("0.11.0"), "serve", 23.7 * GIB, "NVIDIA GeForce RTX 3090", 4).max_num_batched_tokens == 2048


# ---- the pool from a budget ---------------------------------------------------------------------------
def dep_for(spec, **kw):
    kw.setdefault("kv_dtype", "bf16")
    return Deployment(engine="paged", **kw)


def test_v0_blocks_from_vllm_pr_10511s_budget():
    # PR #10511: 'available_kv_cache_memory 53.29GiB' for Meta-Llama-3-8B on one H100.
    # One block of 16 tokens over 32 layers: 16 x 32 x 2 (K, V) x 8 heads x 128 x 2 B = 2 MiB;
    # 53.29 GiB / 2 MiB = 27,284.48 -> 27,284 blocks = 436,544 tokens.
    pool = kv_pool(llama3_8b(), dep_for(None), era("0.6.5"), 53.29 * GIB, 8192)
    assert (pool.num_blocks, pool.logged_tokens) == (27284, 436544)
    assert pool.concurrency == pytest.approx(436544 / 8192)  # V0: blocks x block size / max_model_len


def test_v1_uniform_pool_divides_by_the_page_then_the_layers():
    # V1: num_blocks = budget // page_size // layers (v0.10.2 kv_cache_utils.py:797);
    # page = 16 x 2 x 8 x 128 x 2 B = 65,536 B; 10 GiB // 65,536 = 163,840 // 32 = 5,120 blocks.
    pool = kv_pool(llama3_8b(), dep_for(None), era("0.10.2"), 10 * GIB, 8192)
    assert pool.num_blocks == 5120 and pool.logged_tokens == 81920
    assert pool.concurrency == pytest.approx(5120 / 512)  # N / cdiv(8192, 16)


def test_concurrency_times_length_is_logged_from_0_20_1():
    # v0.20.1 kv_cache_utils.py:1706: tokens = int(X x L), X = N / cdiv(L, bs). With L = 1000:
    # cdiv(1000, 16) = 63 blocks per request; 5,120 / 63 = 81.27 -> int(81.27 x 1000) = 81,269 tokens,
    # where earlier versions log 5,120 x 16 = 81,920.
    new = kv_pool(llama3_8b(), dep_for(None), era("0.20.1"), 10 * GIB, 1000)
    old = kv_pool(llama3_8b(), dep_for(None), era("0.20.0"), 10 * GIB, 1000)
    assert (new.logged_tokens, old.logged_tokens) == (int(5120 / 63 * 1000), 81920)


def test_fp8_kv_halves_the_page_and_tp_splits_the_heads():
    spec = llama3_8b()
    base = kv_pool(spec, dep_for(spec), era("0.10.2"), 10 * GIB, 8192).num_blocks
    assert kv_pool(spec, dep_for(spec, kv_dtype="fp8"), era("0.10.2"), 10 * GIB, 8192).num_blocks == 2 * base
    assert kv_pool(spec, dep_for(spec, tp=2), era("0.10.2"), 10 * GIB, 8192).num_blocks == 2 * base


def test_mla_caches_one_latent_replicated_on_every_rank():
    # DeepSeek-V2-Lite: kv_lora_rank 512 + rope 64 = 576 values x 2 B = 1,152 B per token per layer,
    # the same at TP 1 and TP 4 (MLAAttentionSpec: one KV head whatever the TP).
    spec = profiles.load_model("DeepSeek-V2-Lite")
    p1 = kv_pool(spec, dep_for(spec), era("0.10.2"), 4 * GIB, 4096)
    p4 = kv_pool(spec, dep_for(spec, tp=4), era("0.10.2"), 4 * GIB, 4096)
    assert p1.bytes_per_token == 27 * 1152 and p1.num_blocks == p4.num_blocks


def test_sliding_and_full_layers_share_one_pool_from_0_9_1():
    # gpt-oss-20b: 12 sliding (window 128) + 12 full layers, 8 KV heads x 64 x 2 (K, V) x 2 B = 2,048 B
    # per token per layer; page = 16 x 2,048 = 32,768 B. Groups of g = 12 layers: 2 groups.
    # num_blocks = 4 GiB // 32,768 // 12 = 10,922. Per request of L = 8192 at mnbt 2048:
    # full: cdiv(8192, 16) = 512; sliding: cdiv(min(127 + 2048, 8192), 16) + 1 = cdiv(2175, 16) + 1 = 136 + 1.
    spec = profiles.load_model("gpt-oss-20b")
    pool = kv_pool(spec, dep_for(spec, max_num_batched_tokens=2048), era("0.10.2"), 4 * GIB, 8192)
    assert (pool.layers_per_pool, pool.num_blocks, pool.blocks_per_request) == (12, 10922, 512 + 137)
    assert pool.logged_tokens == (10922 // 2) * 16  # 0.9.1-0.20.0: (N // groups) x block size
    # 0.9.0 and earlier size the sliding layers as full attention: one uniform pool of 24 layers
    old = kv_pool(spec, dep_for(spec, max_num_batched_tokens=2048), era("0.9.0"), 4 * GIB, 8192)
    assert old.num_blocks == 4 * GIB // 32768 // 24


# ---- whole start-ups ------------------------------------------------------------------------------------
def test_pr_10511_weights_and_requested_memory():
    # the log: total_gpu_memory 79.22 GiB x 0.90 = 71.29 GiB; model weights take 14.96 GiB.
    # weights: 8,030,261,248 params x 2 B = 14.958 GiB + the rotary cache 8192 x 128 x 2 B = 2 MiB.
    m = vllm_startup(llama3_8b(), profiles.gpu("H100-SXM"), EngineSettings(version="0.6.5"), VLLM, profiles.formats())
    assert m.total_bytes / GIB == pytest.approx(79.22, abs=0.005)
    assert m.requested_bytes / GIB == pytest.approx(71.29, abs=0.01)
    assert m.term("weights").bytes / GIB == pytest.approx(14.96, abs=0.005)
    assert api.capacity(llama3_8b(), "H100-SXM", tp=2, engine_version="0.6.5")["weight_bytes_per_gpu"] / GIB == \
        pytest.approx(7.48, abs=0.005)


def test_which_terms_an_era_subtracts():
    spec, gpu = llama3_8b(), profiles.gpu("H100-SXM")

    def counted(v, **kw):
        m = vllm_startup(spec, gpu, EngineSettings(version=v, **kw), VLLM, profiles.formats())
        return {t.name for t in m.terms if t.counted}

    assert counted("0.2.4") == {"weights", "activation_peak"}                       # torch only
    assert "cuda_context" in counted("0.6.4") and "cuda_context" not in counted("0.6.5")
    assert "nccl" in counted("0.10.2", tp=2) and "nccl" not in counted("0.11.0", tp=2)  # snapshot after NCCL
    assert "cuda_graph_estimate" not in counted("0.19.0") and "cuda_graph_estimate" in counted("0.20.0")
    eager = vllm_startup(spec, gpu, EngineSettings(version="0.20.0", enforce_eager=True), VLLM, profiles.formats())
    assert eager.term("cuda_graph_estimate").bytes == 0


def test_the_budget_is_requested_memory_less_the_counted_terms():
    m = vllm_startup(llama3_8b(), profiles.gpu("H100-SXM"), EngineSettings(version="0.10.2", tp=2), VLLM,
                     profiles.formats())
    assert m.kv_budget_bytes == pytest.approx(m.requested_bytes - sum(t.bytes for t in m.terms if t.counted))
    assert m.requested_bytes == pytest.approx(m.total_bytes * 0.9)


def test_ceil_of_the_request_from_0_14():
    m = vllm_startup(llama3_8b(), profiles.gpu("H100-SXM"), EngineSettings(version="0.14.0"), VLLM,
                     profiles.formats())
    assert m.requested_bytes == math.ceil(m.total_bytes * 0.9)


def test_kv_cache_memory_overrides_the_budget():
    m = vllm_startup(llama3_8b(), profiles.gpu("H100-SXM"), EngineSettings(version="0.10.2",
                     kv_cache_memory_bytes=10 * GIB), VLLM, profiles.formats())
    assert m.kv_budget_bytes == 10 * GIB and m.num_blocks == 5120


# ---- SGLang ----------------------------------------------------------------------------------------------
def test_sglang_tokens_from_its_docs_log():
    # SGLang 0.4.1.post7 docs: 'Load weight begin. avail mem=78.81 GB', 'Load weight end ... avail
    # mem=63.72 GB', mem_fraction_static 0.88, Llama-3.1-8B: cell = 32 x 8 x 128 x 2 x 2 B = 131,072 B.
    # rest = 63.72 - 78.81 x 0.12 = 54.2628 GiB; x 2^30 / 131,072 = 444,520.86 -> 444,520
    # (the log prints 444,500: its GB figures are rounded to 0.01).
    assert sglang_tokens(78.81 * GIB, 63.72 * GIB, 0.88, 131072) == 444520
    assert sglang_tokens(78.81 * GIB, 63.72 * GIB, 0.88, 131072, page=64) == 444480  # 0.4.4+: // 64 x 64
    assert sglang_tokens(78.81 * GIB, 63.72 * GIB, 0.88, 131072, cap=100000) == 100000


@pytest.mark.parametrize("version, mib, tp, expected", [
    ("0.4.1", 81559, 1, 0.88), ("0.4.1", 81559, 8, 0.81), ("0.3.6", 81559, 8, 0.82), ("0.2.15", 81559, 8, 0.83),
    # 0.4.6, cards above 81,920 MiB: (143,771 - 13,312) / 143,771 = 0.9074 (H200)
    ("0.4.6", 143771, 8, (143771 - 13312) / 143771),
    # 0.4.7-0.5.2: reserved (9.5 + tp/2) GiB below 90 GiB: H100 TP1 (81,559 - 10,240) / 81,559 = 0.8744 -> 0.874
    # (issue #7883 prints 0.874); TP8 (81,559 - 13,824) / 81,559 = 0.8305 -> 0.831 (the Grok-2 log prints 0.831)
    ("0.5.2", 81559, 1, 0.874), ("0.5.2", 81559, 8, 0.831),
])
def test_sglang_mem_fraction_static_defaults(version, mib, tp, expected):
    f, _ = sglang_fraction(era(version, SGLANG), mib, tp, chunk=8192, graph_bs=160)
    assert f == pytest.approx(expected, abs=1e-9)


def test_sglang_0_5_4_reserves_for_activations_and_graphs():
    # 0.5.4 server_args.py:643-800: 512 + 1.5 x 8192 + 2 x 256 + 1 x 128 = 13,440 MiB on an H100
    # (81,559 MiB, chunked 8192 and cuda_graph_max_bs 256 for its class); above the 10 GiB floor.
    # (81,559 - 13,440) / 81,559 = 0.83521 -> 0.835 (helper table: H100 0.5.4 TP1 .835)
    f, _ = sglang_fraction(era("0.5.4", SGLANG), 81559, 1, chunk=8192, graph_bs=256)
    assert f == 0.835


def test_capacity_names_its_engine_version_rules_and_assumptions():
    c = api.capacity("Llama-3.1-8B", "H100-SXM", max_model_len=8192)
    assert c["engine"] == "vllm" and c["engine_version"] == str(VLLM.newest)
    assert "v1-" in c["engine_rules"] and c["settings"]["max_num_seqs"]["source"].startswith("default of")
    assert c["settings"]["max_model_len"]["source"] == "given"
    assert all(t["source"] for t in c["terms"])
    s = api.capacity("Llama-3.1-8B", "H100-SXM", engine="sglang", max_model_len=8192)
    assert s["engine"] == "sglang" and s["kv_cache_tokens"] > 0


def test_a_model_that_does_not_fit_says_so_with_the_remedy():
    c = api.capacity("Llama-3.1-70B", "T4", max_model_len=8192)
    assert c["fits"] is False and c["kv_cache_tokens"] == 0 and "quantize" in c["reason"]
    c = api.capacity(llama3_8b(131072), "L4", max_model_len=131072, engine_version="0.10.2")
    assert c["fits"] is False and "largest max_model_len" in c["reason"]


def test_a_plan_holds_no_more_requests_than_the_engines_start_up_pool():
    """Qwen3-32B bf16 on one H100 under vLLM 0.11.0: the analytic total leaves 8.17 GiB for KV (77 requests of 418
    tokens), but the pool vLLM sizes at start-up is 71.30 - 61.03 weights - 5.58 sampler warm-up peak - 0.15 non-torch
    = 4.53 GiB (4,863,831,294 B, `capacity`). A request of 217 + 201 = 418 tokens takes ceil(418 / 16) = 27 blocks of
    16 tokens x 262,144 B (2 x 64 layers x 8 KV heads x 128 x 2 B) = 113,246,208 B: 4,863,831,294 / 113,246,208 =
    42.9, so 42 fit and the plan says the pool, not the total, is what is short."""
    from planner.request import build

    req = build("Qwen3-32B", "H100-SXM", 64, 217, 201, gpus=1, simulate=False, server_version="0.11.0")
    r = api.plan_request(req)
    assert (r.fits, r.memory.max_batch) == (False, 42)
    assert "start-up pool is 4.53 GiB" in r.reason and "largest batch at this length: 42" in r.reason
    assert api.plan_request(req.with_workload(batch=42)).fits
    assert not api.plan_request(req.with_workload(batch=43)).fits


def test_a_plan_says_when_vllm_would_not_start_at_its_default_context():
    """Qwen3-32B's default max_model_len is its 40,960 positions: one request needs 40,960 x 262,144 B = 10.00 GiB of
    KV cache, and vLLM 0.11.0's pool on one H100 is 4.53 GiB (18,544 tokens: 1,159 blocks of 16), so the engine
    raises at start-up; the plan (32 requests of 418 tokens fit the pool) says to pass --max-model-len 18,544 or
    less. Llama-3.1-8B on the same GPU (128 KiB x 131,072 = 16 GiB of its 54.69 GiB pool) starts: no note."""
    from planner.request import build

    r = api.plan_request(build("Qwen3-32B", "H100-SXM", 32, 217, 201, gpus=1, simulate=False,
                               server_version="0.11.0"))
    assert r.fits and len(r.notes) == 1
    assert "max_model_len of 40,960" in r.notes[0] and "10.00 GiB" in r.notes[0]
    assert "pool is 4.53 GiB" in r.notes[0] and "--max-model-len 18,544" in r.notes[0]
    assert r.as_dict()["notes"] == list(r.notes)
    assert api.plan_request(build("Llama-3.1-8B", "H100-SXM", 32, 1024, 256, gpus=1, simulate=False)).notes == ()


def test_fit_and_plan_agree_on_the_engines_pool():
    """`fit` (and the dashboard's tables built on ``api.memory_model``) resolve the engine as `plan` does: Qwen3-32B
    on one H100 under vLLM 0.11.0 holds 42 requests of 418 tokens (the pool's 4,863,831,294 B / 113,246,208 B a
    request: test_a_plan_holds_no_more_requests_than_the_engines_start_up_pool), and the reason names the pool."""
    f = api.fit("Qwen3-32B", "H100-SXM", 64, 217, 201, server_version="0.11.0")
    assert (f["fits"], f["max_batch"]) == (False, 42)
    assert f["kv_budget_bytes"] == pytest.approx(4_863_831_294, abs=1)
    assert "start-up pool is 4.53 GiB" in f["reason"]
    assert api.fit("Qwen3-32B", "H100-SXM", 42, 217, 201, server_version="0.11.0")["fits"]


def test_an_empty_pool_is_named_empty_not_a_negative_size():
    """Qwen3-32B on one H100 at gpu_memory_utilization 0.80: 0.80 x 79.22 GiB = 63.38 GiB usable holds the analytic
    total of one 32-token request (weights 61.02 + activations + overhead = 63.14 GiB), but the engine's own reserve
    (its sampler warm-up, CUDA graphs) leaves its pool below zero: no request fits, and the reason says the pool is
    empty instead of printing a negative size."""
    from planner.request import build

    r = api.plan_request(build("Qwen3-32B", "H100-SXM", 1, 16, 16, gpus=1, simulate=False, gpu_memory_utilization=0.80))
    assert r.memory.memory_total_bytes_per_gpu <= r.memory.capacity_bytes_per_gpu
    assert (r.fits, r.memory.max_batch) == (False, 0)
    assert "pool is empty" in r.reason and "-" not in r.reason.split("pool")[1].split("(")[0]
    assert r.as_dict()["kv_budget_bytes_per_gpu"] == 0.0
    f = api.fit("Qwen3-32B", "H100-SXM", 1, 16, 16, gpu_memory_utilization=0.80)
    assert not f["fits"] and "pool is empty" in f["reason"] and f["kv_budget_bytes"] == 0.0
