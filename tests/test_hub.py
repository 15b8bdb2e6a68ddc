"""Models by Hugging Face Hub id, from a real Hugging Face cache folder this test lays out (huggingface_hub's
own layout: blobs, refs/main, snapshots/<commit> with symlinks), never a mock of the client.

The safetensors files are written byte by byte (8-byte little-endian header length + JSON header + data),
so the checkpoint's exact bytes are known by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from planner import api, checkpoint, cli, hub, profiles
from planner.errors import PlannerInputError
from tiny_configs import TINY

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# the tiny llama of tiny_configs (vocab 128, hidden 64, MLP 96, 2 layers, 4 heads, 2 KV heads of 16) as a
# compressed-tensors W4A16 checkpoint, group 32, symmetric, lm_head ignored
CT_W4A16 = {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
            "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": None, "weights": {
                "num_bits": 4, "type": "int", "strategy": "group", "group_size": 32, "symmetric": True}}}}
TINY_CT = {**TINY["llama-gqa"], "quantization_config": CT_W4A16}
LINEARS = {"self_attn.q_proj": (64, 64), "self_attn.k_proj": (32, 64), "self_attn.v_proj": (32, 64),
           "self_attn.o_proj": (64, 64), "mlp.gate_proj": (96, 64), "mlp.up_proj": (96, 64),
           "mlp.down_proj": (64, 96)}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], int]], with_data: bool = True) -> bytes:
    """A .safetensors file: u64 little-endian N, N bytes of JSON header (padded with spaces), the data."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + (b"\0" * offset if with_data else b"")


def ct_checkpoint(extra_layer: bool = True) -> dict[str, tuple[str, list[int], int]]:
    """The W4A16 tensors as compressed-tensors writes them: weight_packed int32 [out, in/8], weight_scale bf16
    [out, in/32], weight_shape int64 [2] per linear; embed, norms, lm_head bf16. With ``extra_layer``, a
    layer past num_hidden_layers (an MTP-style layer an engine does not load)."""
    t = {"model.embed_tokens.weight": ("BF16", [128, 64], 128 * 64 * 2), "model.norm.weight": ("BF16", [64], 128),
         "lm_head.weight": ("BF16", [128, 64], 128 * 64 * 2)}
    for i in range(3 if extra_layer else 2):
        for leaf, (out, inp) in LINEARS.items():
            p = f"model.layers.{i}.{leaf}"
            t[f"{p}.weight_packed"] = ("I32", [out, inp // 8], out * inp // 2)
            t[f"{p}.weight_scale"] = ("BF16", [out, inp // 32], out * inp // 16)
            t[f"{p}.weight_shape"] = ("I64", [2], 16)
        for norm in ("input_layernorm", "post_attention_layernorm"):
            t[f"model.layers.{i}.{norm}.weight"] = ("BF16", [64], 128)
    return t


def lay_out(cache: Path, repo: str, cfg: dict, files: dict[str, bytes] | None = None, commit: str = COMMIT) -> Path:
    """One repo in huggingface_hub's cache layout: blobs/<sha256>, refs/main, snapshots/<commit>/<file> -> blob."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name, data in {"config.json": json.dumps(cfg).encode(), **(files or {})}.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    return snap


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(root))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_ASSETS_CACHE", str(root / "assets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profiles.load_model.cache_clear()
    yield root / "hub"
    profiles.load_model.cache_clear()


def test_the_layout_is_huggingface_hubs_own(cache):
    snap = lay_out(cache, "acme/tiny-llama", TINY["llama-gqa"])
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache("acme/tiny-llama", "config.json", cache_dir=cache) == str(snap / "config.json")
    assert hub.cached_snapshot("acme/tiny-llama").snapshot == snap


def test_a_cached_id_resolves_offline_and_plans(cache, capsys):
    lay_out(cache, "acme/tiny-llama", TINY["llama-gqa"])
    spec = profiles.load_model("acme/tiny-llama")
    assert spec.name == "acme/tiny-llama" and spec.num_layers == 2 and spec.num_kv_heads == 2
    assert cli.main(["inspect", "acme/tiny-llama", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "acme/tiny-llama" and out["weights_format"] == "bf16"
    assert out["checkpoint"] is None and out["weight_bytes_source"].startswith("formula")
    assert cli.main(["plan", "acme/tiny-llama", "--gpu", "H100-SXM", "--batch", "2", "--prompt", "16",
                     "--output", "4", "--json"]) == 0
    assert "acme/tiny-llama" in hub.cached_ids()


def test_list_shows_the_cached_ids(cache, capsys):
    lay_out(cache, "acme/tiny-llama", TINY["llama-gqa"])
    assert cli.main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hub_cache"] == ["acme/tiny-llama"]


def test_a_revision_resolves_by_branch_or_commit(cache):
    lay_out(cache, "acme/tiny-llama", TINY["llama-gqa"])
    assert hub.resolve("acme/tiny-llama@main").commit == COMMIT
    assert hub.resolve(f"acme/tiny-llama@{COMMIT}").commit == COMMIT


def test_offline_and_not_cached_is_one_line_naming_the_id_and_the_cached_ones(cache, capsys):
    lay_out(cache, "acme/tiny-llama", TINY["llama-gqa"])
    assert cli.main(["inspect", "acme/Llama-3.1-8B-Instruct-FT"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: model: 'acme/Llama-3.1-8B-Instruct-FT' is not in the "
                                                   "Hugging Face cache and the Hub is offline (HF_HUB_OFFLINE=1)")
    assert "cached ids: acme/tiny-llama" in err and "Llama-3.1-8B" in err  # and the close bundled names
    assert "Traceback" not in err


def test_an_id_whose_org_is_not_the_bundled_source_is_not_the_bundled_copy(cache):
    assert profiles.load_model("meta-llama/Llama-3.1-8B").name == "Llama-3.1-8B"  # the bundled copy's source
    with pytest.raises(PlannerInputError, match="not in the Hugging Face cache"):
        profiles.load_model("someone/Llama-3.1-8B")  # a fine-tune of the same name is another model


@pytest.mark.parametrize("text", ["acme/../x", "a/b/c", "/abs/path", "acme/x.json", "[x](https://e.x)", "acme--x/y",
                                  "acme/x@../../etc"])
def test_what_is_not_an_id_is_not_looked_up(text):
    assert hub.parse_id(text) is None


def test_safetensors_headers_give_the_exact_checkpoint_bytes(cache, capsys):
    lay_out(cache, "acme/tiny-w4a16", TINY_CT, {"model.safetensors": safetensors_bytes(ct_checkpoint())})
    assert cli.main(["inspect", "acme/tiny-w4a16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # per linear: weight_packed out*in/2 B + weight_scale out*in/16 B + weight_shape 16 B; the 7 linears of a
    # layer have 30,720 weights: 15,360 + 1,920 + 7 x 16 = 17,392 B a layer; 2 layers 34,784 B
    # bf16: embed 128 x 64 x 2 = 16,384, lm_head 16,384, norms 2 x 2 x 128 + 128 = 640
    # served = 34,784 + 16,384 + 16,384 + 640 = 68,192 B; the layer-2 (MTP-style) copy, 17,392 + 256 B, is not
    ck = out["checkpoint"]
    assert ck["served_bytes"] == 68_192 and ck["part_bytes"]["extra"] == 17_648
    assert ck["bytes_by_dtype"] == {"BF16": 3 * 1920 + 3 * 256 + 128 + 2 * 16_384, "I32": 3 * 15_360, "I64": 3 * 112}
    # the formula (w4a16-g32: 4 + 16/32 = 4.5 bits a weight, no per-tensor weight_shape): 30,720 x 2 x 4.5 / 8
    # = 34,560 B + 33,408 B of bf16 = 67,968 B, 224 B (the 14 weight_shape tensors) under the checkpoint
    assert out["weights_format"] == "w4a16-g32" and ck["formula_bytes"] == 67_968
    assert out["weight_bytes"] == 68_192 and out["weight_bytes_source"].startswith("checkpoint: safetensors headers")
    assert ck["used_for_weight_bytes"] is True
    plan = api.fit("acme/tiny-w4a16", "H100-SXM", 1, 16)
    assert plan["weights_bytes"] == pytest.approx(68_192) and plan["weight_bytes_source"].startswith("checkpoint")


def test_only_the_headers_are_read(cache):
    """A file that stops after its header (no tensor data at all) gives the same bytes: nothing past 8 + N."""
    lay_out(cache, "acme/tiny-w4a16", TINY_CT, {"model.safetensors": safetensors_bytes(ct_checkpoint(), False)})
    assert api.inspect_model("acme/tiny-w4a16")["checkpoint"]["served_bytes"] == 68_192


def test_a_sharded_checkpoint_needs_every_shard_and_reads_the_index(cache):
    t = ct_checkpoint(extra_layer=False)
    names = list(t)
    half = {n: t[n] for n in names[: len(names) // 2]}, {n: t[n] for n in names[len(names) // 2:]}
    files = {f"model-0000{i + 1}-of-00002.safetensors": safetensors_bytes(h) for i, h in enumerate(half)}
    index = {"metadata": {"total_size": 68_192}, "weight_map": {n: f for f, h in zip(files, half, strict=True) for n in h}}
    lay_out(cache, "acme/tiny-sharded", TINY_CT, {**files, "model.safetensors.index.json": json.dumps(index).encode()})
    ck = api.inspect_model("acme/tiny-sharded")["checkpoint"]
    assert ck["files"] == 2 and ck["served_bytes"] == 68_192 and ck["part_bytes"]["extra"] == 0


def test_a_missing_shard_falls_back_to_the_formula(cache):
    index = {"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                            "lm_head.weight": "model-00002-of-00002.safetensors"}}
    only_one = safetensors_bytes({"model.embed_tokens.weight": ("BF16", [128, 64], 16_384)})
    lay_out(cache, "acme/tiny-partial", TINY_CT, {"model-00001-of-00002.safetensors": only_one,
                                                  "model.safetensors.index.json": json.dumps(index).encode()})
    out = api.inspect_model("acme/tiny-partial")
    assert out["checkpoint"] is None and out["weight_bytes"] == 67_968


def test_a_saved_summary_serves_the_next_offline_run(cache):
    snap = lay_out(cache, "acme/tiny-w4a16", TINY_CT)
    spec = profiles.load_model("acme/tiny-w4a16")
    ck = checkpoint.summarise({"model.safetensors": {n: {"dtype": d, "shape": s, "data_offsets": [0, b]}
                                                     for n, (d, s, b) in ct_checkpoint().items()}},
                              spec, "acme/tiny-w4a16", COMMIT, "headers fetched from the Hub with HTTP range requests")
    path = hub._summary_path(hub.HubModel("acme/tiny-w4a16", "main", COMMIT, snap))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(ck.as_dict()))
    profiles.load_model.cache_clear()
    out = api.inspect_model("acme/tiny-w4a16")
    assert out["checkpoint"]["served_bytes"] == 68_192 and "range requests" in out["weight_bytes_source"]


@pytest.mark.parametrize("data", [b"\x05", struct.pack("<Q", 10**12) + b"{}", struct.pack("<Q", 8) + b"not json",
                                  struct.pack("<Q", 2) + b"[]",
                                  safetensors_bytes({"x": ("BF16", [2], 4)}).replace(b'"shape"', b'"shapes"')])
def test_a_damaged_header_is_ignored_not_a_traceback(cache, data):
    lay_out(cache, "acme/tiny-w4a16", TINY_CT, {"model.safetensors": data})
    out = api.inspect_model("acme/tiny-w4a16")
    assert out["checkpoint"] is None and out["weight_bytes"] == 67_968


def test_a_bf16_checkpoint_replaces_the_bf16_formula_and_an_fp32_one_does_not(cache):
    t = {n: v for n, v in ct_checkpoint(False).items() if not n.startswith("model.layers.") or n.endswith("norm.weight")}
    t.update({f"model.layers.{i}.{leaf}.weight": ("BF16", [o, k], o * k * 2) for i in range(2)
              for leaf, (o, k) in LINEARS.items()})
    lay_out(cache, "acme/tiny-bf16", TINY["llama-gqa"], {"model.safetensors": safetensors_bytes(t)})
    out = api.inspect_model("acme/tiny-bf16")
    # 61,440 linear weights x 2 B + 33,408 B of embed, lm_head and norms = 156,288 B, the bf16 formula's too
    assert out["checkpoint"]["format_id"] == "bf16" and out["weight_bytes_source"].startswith("checkpoint")
    assert out["checkpoint"]["served_bytes"] == out["weight_bytes"] == 156_288
    f32 = {n: ("F32", s, 2 * b) for n, (_, s, b) in t.items()}
    lay_out(cache, "acme/tiny-f32", TINY["llama-gqa"], {"model.safetensors": safetensors_bytes(f32)})
    out = api.inspect_model("acme/tiny-f32")
    assert out["checkpoint"]["format_id"] == "" and out["weight_bytes_source"].startswith("formula")
    assert out["checkpoint"]["bytes_by_dtype"] == {"F32": 2 * out["checkpoint"]["served_bytes"] // 2}


def test_the_core_still_imports_without_the_hub_client():
    import subprocess
    import sys

    code = ("import sys; sys.modules['huggingface_hub'] = None; import planner.cli, planner.hub; "
            "print(planner.hub.cached_ids())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stderr


# ---- online: the real huggingface_hub client against a local Hub (HF_ENDPOINT) ---------------------------
class LocalHub:
    """A few routes of the Hub's file API, enough for hf_hub_download and the safetensors range requests:
    HEAD/GET /{repo}/resolve/{revision}/{file} with X-Repo-Commit and ETag, Range answered with 206, missing
    files as EntryNotFound, gated repos as 403 GatedRepo. It records every request's path and Range."""

    def __init__(self, repos: dict[str, dict[str, bytes]], gated: tuple[str, ...] = ()):
        import http.server
        import threading

        self.repos, self.gated, self.log = repos, gated, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.answer(head=True)

            def do_GET(self):
                self.answer(head=False)

            def answer(self, head: bool):
                outer.log.append((self.command, self.path, self.headers.get("range")))
                parts = self.path.split("?")[0].lstrip("/").split("/")
                repo, files = "/".join(parts[:2]), outer.repos.get("/".join(parts[:2]))
                if repo in outer.gated:
                    return self.error(403, "GatedRepo", "Access to model is restricted")
                if files is None or len(parts) < 5 or parts[2] != "resolve":
                    return self.error(401, "RepoNotFound", "Repository not found")
                data = files.get("/".join(parts[4:]))
                if data is None:
                    return self.error(404, "EntryNotFound", "Entry not found")
                status, body = 200, data
                if self.headers.get("range"):
                    a, b = self.headers["range"].split("=")[1].split("-")
                    status, body = 206, data[int(a): int(b) + 1]
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def error(self, status, code, message):
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def run_online(tmp_path: Path, hub_url: str, *args: str):
    """``python -m planner`` in a fresh process, online against ``hub_url``, with its own empty cache."""
    import subprocess
    import sys

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
           "HF_ASSETS_CACHE": str(tmp_path / "hf" / "assets"), "HF_ENDPOINT": hub_url, "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)


@pytest.fixture
def local_hub():
    weights = safetensors_bytes(ct_checkpoint())
    server = LocalHub({"acme/tiny-w4a16": {"config.json": json.dumps(TINY_CT).encode(), "model.safetensors": weights},
                       "acme/locked": {"config.json": b"{}"}}, gated=("acme/locked",))
    yield server, len(weights)
    server.close()


def test_online_fetches_the_config_and_only_the_safetensors_header(tmp_path, local_hub):
    server, size = local_hub
    r = run_online(tmp_path, server.url, "inspect", "acme/tiny-w4a16", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["checkpoint"]["served_bytes"] == 68_192 and "range requests" in out["weight_bytes_source"]
    gets = [(p, rng) for m, p, rng in server.log if m == "GET" and p.endswith("model.safetensors")]
    assert gets and all(rng and rng.startswith("bytes=") for _, rng in gets)  # never a plain GET of weights
    # config.json landed in the cache, and the header summary in the assets cache: the next run is offline
    assert (tmp_path / "hf" / "hub" / "models--acme--tiny-w4a16" / "snapshots" / COMMIT / "config.json").is_file()
    assert list((tmp_path / "hf" / "assets" / "kv-planner").rglob(f"{COMMIT}.json"))
    server.log.clear()
    r = run_online(tmp_path, "http://127.0.0.1:9", "inspect", "acme/tiny-w4a16", "--json")  # nothing listens
    assert r.returncode == 0 and json.loads(r.stdout)["checkpoint"]["served_bytes"] == 68_192 and not server.log


def test_online_gated_repo_says_how_to_pass_a_token(tmp_path, local_hub):
    server, _ = local_hub
    r = run_online(tmp_path, server.url, "inspect", "acme/locked")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "'acme/locked' is a gated repository" in r.stderr and "HF_TOKEN" in r.stderr
    assert "huggingface-cli login" in r.stderr


def test_online_unknown_repo_and_unreachable_hub_are_one_line(tmp_path, local_hub):
    server, _ = local_hub
    r = run_online(tmp_path, server.url, "inspect", "acme/nothing-here")
    assert r.returncode == 2 and "was not found on the Hugging Face Hub" in r.stderr and "HF_TOKEN" in r.stderr
    r = run_online(tmp_path, "http://127.0.0.1:9", "inspect", "acme/nothing-here")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "is not in the Hugging Face cache and the Hub could not be reached" in r.stderr
