"""A checkpoint's exact bytes, from its safetensors headers.

A ``.safetensors`` file starts with an 8-byte little-endian header length N and N bytes of JSON:
``{"name": {"dtype": "BF16", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}``
(huggingface/safetensors, docs "Format"). ``end - begin`` is each tensor's exact size on disk, scales,
zero points and packed integers included, so the headers alone (a few MB for the largest models, never
the weights) give the real checkpoint bytes by dtype.

``summarise`` reduces the headers to bytes by dtype and by part (embeddings, lm_head, the layer stack,
and what a text-only serving engine does not load: layers past ``num_hidden_layers`` such as
DeepSeek-V3's MTP layer, vision and audio towers). ``register`` ties a summary to the ModelSpec a Hub id
resolved to (planner/hub.py); ``scale_for`` then scales the formula's bytes of the checkpoint's own
weight format, part by part, to the checkpoint's (formats.tensor_bytes), and says so.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PlannerInputError
from .spec import ModelSpec

MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit on N
MAX_TENSORS = 2_000_000
PARTS = ("embed", "lm_head", "body", "extra")
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
_EMBED = re.compile(r"embed_tokens|(?:^|\.)(?:wte|wpe)\.|word_embeddings|embed_positions|project_(?:in|out)\.")
_EXTRA = re.compile(r"vision|visual|audio|multi_modal_projector|mm_projector|image_newline")
# planner inventory roles per part (formats.tensor_bytes rows)
_ROLE_PART = {"embed": "embed", "pos_embed": "embed", "embed_proj": "embed", "lm_head": "lm_head"}
SCALE_LIMITS = (0.5, 2.0)  # a checkpoint this far from the formula is not this config's checkpoint


@dataclass(frozen=True)
class CheckpointBytes:
    repo: str
    revision: str
    source: str                                  # where the headers were read
    files: int
    tensors: int
    bytes_by_dtype: tuple[tuple[str, int], ...]
    elements_by_dtype: tuple[tuple[str, int], ...]
    part_bytes: tuple[tuple[str, int], ...]      # PARTS
    format_id: str = ""                          # the weight format these bytes are the checkpoint of

    @property
    def total_bytes(self) -> int:
        return sum(b for _, b in self.bytes_by_dtype)

    @property
    def served_bytes(self) -> int:
        """What a text-only engine loads: every part but ``extra``."""
        return sum(b for p, b in self.part_bytes if p != "extra")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(bytes_by_dtype=dict(self.bytes_by_dtype), elements_by_dtype=dict(self.elements_by_dtype),
                 part_bytes=dict(self.part_bytes), total_bytes=self.total_bytes, served_bytes=self.served_bytes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckpointBytes:
        return cls(str(d["repo"]), str(d["revision"]), str(d["source"]), int(d["files"]), int(d["tensors"]),
                   _pairs(d["bytes_by_dtype"]), _pairs(d["elements_by_dtype"]), _pairs(d["part_bytes"]),
                   str(d.get("format_id", "")))


def _pairs(d: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(d, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in d.values()):
        raise PlannerInputError("checkpoint summary", "is damaged", "delete the cached summary file")
    return tuple(sorted((str(k), int(v)) for k, v in d.items()))


def parse_header(data: bytes, what: str) -> dict[str, dict]:
    """The tensors of one safetensors header (``data``: the JSON after the 8-byte length), checked."""
    try:
        header = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PlannerInputError(what, "has a safetensors header that is not JSON", "re-download the file") from None
    if not isinstance(header, dict) or len(header) > MAX_TENSORS:
        raise PlannerInputError(what, "has a safetensors header that is not an object of tensors")
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(t, dict) and isinstance(t.get("dtype"), str) and isinstance(t.get("shape"), list)
              and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in t["shape"])
              and isinstance(t.get("data_offsets"), list) and len(t["data_offsets"]) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) for x in t["data_offsets"])
              and 0 <= t["data_offsets"][0] <= t["data_offsets"][1])
        if not ok:
            raise PlannerInputError(what, f"tensor {str(name)[:60]!r} has no valid dtype, shape and data_offsets")
        out[str(name)] = t
    return out


def read_header(path: Path) -> dict[str, dict]:
    """The tensors of a local .safetensors file: its first 8 + N bytes only."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise PlannerInputError(str(path.name), "is too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise PlannerInputError(str(path.name), f"declares a {n:,}-byte header (limit {MAX_HEADER_BYTES:,})")
        data = f.read(n)
    if len(data) != n:
        raise PlannerInputError(str(path.name), "ends inside its safetensors header")
    return parse_header(data, str(path.name))


def _part(name: str, num_layers: int, tied: bool) -> str:
    m = _LAYER.search(name)
    if _EXTRA.search(name):
        return "extra"
    if m:
        return "body" if int(m.group(1)) < num_layers else "extra"
    if name.startswith("lm_head.") or ".lm_head." in name:
        return "extra" if tied else "lm_head"  # a tied head is the embedding: engines skip the copy
    return "embed" if _EMBED.search(name) else "body"


def summarise(headers: dict[str, dict[str, dict]], spec: ModelSpec, repo: str, revision: str,
              source: str) -> CheckpointBytes:
    """Bytes and elements by dtype and bytes by part, over every file's header (``{file: tensors}``)."""
    by_dtype: dict[str, int] = {}
    elems: dict[str, int] = {}
    parts = dict.fromkeys(PARTS, 0)
    count = 0
    for tensors in headers.values():
        for name, t in tensors.items():
            size = t["data_offsets"][1] - t["data_offsets"][0]
            by_dtype[t["dtype"]] = by_dtype.get(t["dtype"], 0) + size
            elems[t["dtype"]] = elems.get(t["dtype"], 0) + int(np.prod(t["shape"], dtype=object))
            parts[_part(name, spec.num_layers, spec.tie_word_embeddings)] += size
            count += 1
    return CheckpointBytes(repo, revision, source, len(headers), count, tuple(sorted(by_dtype.items())),
                           tuple(sorted(elems.items())), tuple(parts.items()))


# ---- the checkpoints behind the specs of this process ---------------------------------------------------
_KNOWN: dict[ModelSpec, CheckpointBytes] = {}


def register(spec: ModelSpec, ck: CheckpointBytes, format_id: str) -> None:
    """Tie ``ck`` (the checkpoint of ``format_id``) to ``spec`` for formats.tensor_bytes."""
    from . import formats

    _KNOWN[spec] = replace(ck, format_id=format_id)
    formats.tensor_bytes.cache_clear()


def forget(spec: ModelSpec) -> None:
    """No checkpoint bytes for ``spec`` (its snapshot changed, or its headers are gone)."""
    if _KNOWN.pop(spec, None) is not None:
        from . import formats

        formats.tensor_bytes.cache_clear()


def known(spec: ModelSpec) -> CheckpointBytes | None:
    return _KNOWN.get(spec)


def scale_for(spec: ModelSpec, fmt_id: str, inv) -> tuple[np.ndarray, str] | None:
    """Per-row factors that bring the formula's bytes (``inv["bytes"]``) of the checkpoint's own format to
    the checkpoint's, part by part (one factor for all when a part is missing on one side), with the
    provenance text; None when no checkpoint is known for this spec and format, or when it is further
    from the formula than SCALE_LIMITS allows."""
    ck = _KNOWN.get(spec)
    if ck is None or ck.format_id != fmt_id:
        return None
    part = np.array([_ROLE_PART.get(r, "body") for r in inv["role"]])
    formula = {p: float(inv["bytes"][part == p].sum()) for p in PARTS[:3]}
    have = {p: float(dict(ck.part_bytes).get(p, 0)) for p in PARTS[:3]}
    total = sum(formula.values())
    if not total or not ck.served_bytes or not SCALE_LIMITS[0] <= ck.served_bytes / total <= SCALE_LIMITS[1]:
        return None
    if all((formula[p] > 0) == (have[p] > 0) for p in formula):
        factors = np.array([have[p] / formula[p] if formula[p] else 1.0 for p in part])
    else:
        factors = np.full(len(part), ck.served_bytes / total)
    return factors, (f"checkpoint: safetensors headers of {ck.repo}@{ck.revision[:12]} ({ck.tensors:,} tensors, "
                     f"{ck.source})")


def report(spec: ModelSpec, formula_bytes: float, used: bool) -> dict[str, Any] | None:
    """The checkpoint's bytes next to the formula's, for ``inspect``; None when nothing is known.
    ``used``: whether the plan's weight bytes came from it (formats.weight_bytes_source)."""
    ck = _KNOWN.get(spec)
    if ck is None:
        return None
    out = ck.as_dict()
    out["formula_bytes"] = formula_bytes
    out["difference_pct"] = (ck.served_bytes / formula_bytes - 1) * 100 if formula_bytes else None
    out["used_for_weight_bytes"] = used
    return out
