"""Models by Hugging Face Hub id: config.json (and the safetensors headers) from the local Hugging Face
cache, or fetched from the Hub when online.

The cache is read directly in huggingface_hub's layout (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``; ``models--org--name/refs/<revision>`` holds the commit of
``models--org--name/snapshots/<commit>/config.json``), so a cached id resolves with no network and without
huggingface_hub installed. Online (not ``HF_HUB_OFFLINE=1``), huggingface_hub downloads config.json into
that cache, and the checkpoint's size comes from the safetensors headers alone: the index file and, per
shard, an HTTP range request for its first 8 + N bytes (huggingface_hub ``parse_safetensors_file_metadata``),
never the weights. The headers' summary is kept in the assets cache (``$HF_ASSETS_CACHE``, else
``$HF_HOME/assets``: ``kv-planner/<org>--<name>/<commit>.json``) for the next offline run.

huggingface_hub is imported inside the functions that go online: the planner core imports without it.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint
from .configread import loads
from .errors import PlannerInputError
from .spec import ModelSpec

_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_ID = re.compile(rf"(?P<repo>{_PART}/{_PART})(?:@(?P<rev>[A-Za-z0-9][A-Za-z0-9_.-]{{0,99}}))?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
TOKEN_FIX = ("accept its licence on the Hub page, then give a token: set HF_TOKEN=hf_... (a read token from "
             "huggingface.co/settings/tokens) or run `huggingface-cli login` (`hf auth login`)")
MAX_LISTED = 500
MAX_SHARDS = 2_000


@dataclass(frozen=True)
class HubModel:
    repo: str
    revision: str
    commit: str
    snapshot: Path
    downloaded: bool = False

    @property
    def config_path(self) -> Path:
        return self.snapshot / "config.json"


def parse_id(text: str) -> tuple[str, str] | None:
    """``org/name`` or ``org/name@revision`` -> (repo, revision); None for anything else (a path, a
    bundled name, text with characters a repo id cannot have)."""
    m = _ID.fullmatch(str(text))
    if not m or ".." in m["repo"] or "--" in m["repo"] or m["repo"].endswith((".json", ".safetensors")):
        return None
    return m["repo"], m["rev"] or "main"


def _env_path(*names: str) -> Path | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return Path(os.path.expandvars(v)).expanduser()
    return None


def hf_home() -> Path:
    home = _env_path("HF_HOME")
    return home or (_env_path("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"


def cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment at call time (as huggingface_hub reads it)."""
    return _env_path("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE") or hf_home() / "hub"


def assets_dir() -> Path:
    return _env_path("HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE") or hf_home() / "assets"


def endpoint() -> str | None:
    """``$HF_ENDPOINT`` at call time (a mirror, or the tests' local Hub), None for huggingface.co."""
    return os.environ.get("HF_ENDPOINT") or None


def offline() -> bool:
    return any(os.environ.get(n, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for n in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _folder(repo: str) -> Path:
    return cache_dir() / f"models--{repo.replace('/', '--')}"


def cached_snapshot(repo: str, revision: str = "main") -> HubModel | None:
    """The cached snapshot of ``repo`` at ``revision`` (a branch, a tag or a commit) holding config.json."""
    folder = _folder(repo)
    commit = revision if _COMMIT.fullmatch(revision) else None
    if commit is None:
        ref = folder / "refs" / revision
        try:
            commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else ""
        except OSError:
            commit = ""
        if not _COMMIT.fullmatch(commit):
            return None
    snap = folder / "snapshots" / commit
    return HubModel(repo, revision, commit, snap) if (snap / "config.json").is_file() else None


def cached_ids() -> list[str]:
    """Ids whose ``main`` snapshot in the cache holds a config.json (what resolves offline)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.glob("models--*--*"))[: MAX_LISTED * 4]:
        repo = d.name.removeprefix("models--").replace("--", "/", 1)
        if parse_id(repo) and cached_snapshot(repo):
            out.append(repo)
    return out[:MAX_LISTED]


def _not_cached(repo: str, why: str) -> PlannerInputError:
    from .profiles import model_names

    cached = cached_ids()
    close = difflib.get_close_matches(repo.rsplit("/", 1)[-1], model_names(), n=3, cutoff=0.5)
    fix = "; ".join(filter(None, [
        f"cached ids: {', '.join(cached[:20])}" + (" ..." if len(cached) > 20 else "") if cached
        else f"nothing is cached under {cache_dir()}",
        f"bundled models close to it: {', '.join(close)}" if close else "",
        "or give a path to a config.json"]))
    return PlannerInputError("model", f"{repo!r} is not in the Hugging Face cache and {why}", fix)


def resolve(text: str) -> HubModel:
    """The snapshot of a Hub id: from the cache, else downloaded (config.json only) when online."""
    parsed = parse_id(text)
    if parsed is None:
        raise PlannerInputError("model", f"{str(text)[:80]!r} is not a Hugging Face Hub id", "write it as org/name")
    repo, revision = parsed
    found = cached_snapshot(repo, revision)
    if found:
        return found
    if offline():
        raise _not_cached(repo, "the Hub is offline (HF_HUB_OFFLINE=1)")
    return _download(repo, revision)


@contextmanager
def _quiet():
    """No progress bars or retry warnings from huggingface_hub on the CLI's stderr while it fetches."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    log = logging.getLogger("huggingface_hub")
    level, bars_off = log.level, are_progress_bars_disabled()
    log.setLevel(logging.ERROR)
    disable_progress_bars()
    try:
        yield
    finally:
        log.setLevel(level)
        if not bars_off:
            enable_progress_bars()


def _download(repo: str, revision: str) -> HubModel:
    """config.json into the cache. One HEAD first, without the client's retries, so that an unreachable Hub
    (or a gated repo) answers at once instead of after hf_hub_download's back-off (about 25 s)."""
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    except ImportError:
        raise _not_cached(repo, "huggingface_hub is not installed to fetch it (pip install huggingface_hub)") from None
    try:
        with _quiet():
            get_hf_file_metadata(hf_hub_url(repo, "config.json", revision=revision, endpoint=endpoint()))
            path = Path(hf_hub_download(repo, "config.json", revision=revision, cache_dir=str(cache_dir()),
                                        endpoint=endpoint()))
    except Exception as e:  # noqa: BLE001 - every failure of the client becomes one line
        raise _hub_error(repo, e) from None
    return HubModel(repo, revision, path.parent.name, path.parent, downloaded=True)


def _hub_error(repo: str, e: Exception) -> PlannerInputError:
    """A huggingface_hub exception as one PlannerInputError: gated, not found, no config, or offline."""
    name = type(e).__name__
    status = getattr(getattr(e, "response", None), "status_code", None)
    if name == "GatedRepoError" or status in (401, 403) and name != "RepositoryNotFoundError":
        return PlannerInputError("model", f"{repo!r} is a gated repository on the Hugging Face Hub: reading its "
                                 "config.json needs a token with access", TOKEN_FIX)
    if name == "RepositoryNotFoundError" or status == 404 and name != "RemoteEntryNotFoundError":
        return PlannerInputError("model", f"{repo!r} was not found on the Hugging Face Hub, or it is private or "
                                 "gated and no token with access was given", "check the id; for a private or gated "
                                 "repo " + TOKEN_FIX)
    if name == "RevisionNotFoundError":
        return PlannerInputError("model", f"{repo!r} has no such revision on the Hub", "use a branch, tag or commit")
    if name in ("RemoteEntryNotFoundError", "EntryNotFoundError"):
        return PlannerInputError("model", f"{repo!r} has no config.json on the Hub", "give a model repository")
    return _not_cached(repo, f"the Hub could not be reached ({name})")


def load_spec(text: str) -> ModelSpec:
    """The ModelSpec of a Hub id, named by the id; its checkpoint's safetensors bytes registered when
    known (planner/checkpoint.py)."""
    from . import api, profiles

    hm = resolve(text)
    cfg = profiles.with_quant_file(profiles.read_json(hm.config_path, "config.json"), hm.config_path.parent)
    spec = ModelSpec.from_hf_config(cfg, name=hm.repo)
    ck = checkpoint_bytes(hm, spec)
    if ck is not None:
        declared = api.own_weights(spec) or ""  # a method the planner does not model: the plan names it when asked
        checkpoint.register(spec, ck, _served_format(spec, ck, declared))
    else:
        checkpoint.forget(spec)
    return spec


def _served_format(spec: ModelSpec, ck: checkpoint.CheckpointBytes, declared: str) -> str:
    """The format these bytes are the checkpoint of: the declared one for a quantized config; for an
    unquantized one, bf16 or fp16 when nearly all its bytes are in that dtype (an fp32 checkpoint is
    served in 16 bit: its bytes are not the plan's)."""
    if spec.quant:
        return declared
    by = dict(ck.bytes_by_dtype)
    for dtype, fmt in (("BF16", "bf16"), ("F16", "fp16")):
        if by.get(dtype, 0) >= 0.99 * ck.total_bytes:
            return fmt
    return ""


# ---- the checkpoint's bytes ---------------------------------------------------------------------------------
def _shard_names(hm: HubModel) -> list[str] | None:
    index = hm.snapshot / "model.safetensors.index.json"
    if index.is_file():
        data = loads(index.read_bytes(), "model.safetensors.index.json", 50_000_000)
        wm = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
            raise PlannerInputError("model.safetensors.index.json", "has no weight_map of file names")
        names = sorted(set(wm.values()))
        return names if len(names) <= MAX_SHARDS and all(parse_file(n) for n in names) else None
    single = hm.snapshot / "model.safetensors"
    return ["model.safetensors"] if single.is_file() else None


def parse_file(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,200}\.safetensors", name)) and ".." not in name


def _summary_path(hm: HubModel) -> Path:
    return assets_dir() / "kv-planner" / hm.repo.replace("/", "--") / f"{hm.commit}.json"


def checkpoint_bytes(hm: HubModel, spec: ModelSpec) -> checkpoint.CheckpointBytes | None:
    """The checkpoint's safetensors bytes: headers of the cached files, else a summary saved by an earlier
    online run, else (online) headers fetched with range requests; None when none is available."""
    try:
        names = _shard_names(hm)
        if names and all((hm.snapshot / n).is_file() for n in names):
            headers = {n: checkpoint.read_header(hm.snapshot / n) for n in names}
            return checkpoint.summarise(headers, spec, hm.repo, hm.commit, "read from the local Hugging Face cache")
        saved = _summary_path(hm)
        if saved.is_file():
            return checkpoint.CheckpointBytes.from_dict(json.loads(saved.read_text(encoding="utf-8")))
        if offline():
            return None
        ck = _fetch_headers(hm, spec)
    except (PlannerInputError, OSError, ValueError, KeyError):
        return None  # the config alone still plans (the formula's bytes)
    if ck is not None:
        try:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(ck.as_dict()), encoding="utf-8")
        except OSError:
            pass
    return ck


def _fetch_headers(hm: HubModel, spec: ModelSpec) -> checkpoint.CheckpointBytes | None:
    """The headers over the network: the index (cached like config.json) and 8 + N bytes per shard."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError:
        return None
    with _quiet():
        return _fetch(hm, spec, HfApi(endpoint=endpoint()), hf_hub_download)


def _fetch(hm: HubModel, spec: ModelSpec, api, hf_hub_download) -> checkpoint.CheckpointBytes | None:
    try:
        try:
            index = Path(hf_hub_download(hm.repo, "model.safetensors.index.json", revision=hm.commit,
                                         cache_dir=str(cache_dir()), endpoint=endpoint()))
            names = _shard_names(HubModel(hm.repo, hm.revision, hm.commit, index.parent))
        except Exception as e:  # noqa: BLE001 - no index: a single-file checkpoint, or none
            if "EntryNotFound" not in type(e).__name__:
                return None
            names = ["model.safetensors"]
        if not names:
            return None
        headers = {}
        for n in names:
            meta = api.parse_safetensors_file_metadata(hm.repo, n, revision=hm.commit)
            headers[n] = {k: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": list(t.data_offsets)}
                          for k, t in meta.tensors.items()}
    except Exception:  # noqa: BLE001 - gated weights, a network error: plan from the formula
        return None
    return checkpoint.summarise(headers, spec, hm.repo, hm.commit,
                                "headers fetched from the Hub with HTTP range requests")
