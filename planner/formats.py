"""Weight memory by format: bytes of every tensor under fp16/bf16/fp8, bitsandbytes, GPTQ, AWQ and GGUF.

The figures (bits per weight with scales and zero points, which tensors each method leaves in
16 bit, GGUF's per-tensor mixes) live in ``profiles/weight_formats.json`` with their sources;
docs/weight-formats.md explains each. GPTQ/AWQ checkpoints with a group size or bit width not
listed there get their storage type from the same formula the listed ones use:
``bits + (16-bit scale + bits-wide packed zero) / group_size`` per weight, plus GPTQ's int32
``g_idx`` per input column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .errors import PlannerInputError
from .params import inventory
from .spec import ModelSpec


@dataclass(frozen=True)
class StorageType:
    id: str
    bits_per_weight: float
    per_out_row_bits: float = 0.0
    per_in_col_bits: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class WeightFormat:
    id: str
    family: str
    label: str
    compute_dtype: str
    roles: tuple[tuple[str, str], ...]
    more_bits_roles: tuple[str, ...] = ()
    more_bits_type: str = ""
    notes: str = ""
    source: str = ""

    def storage_for(self, role: str, matrix: bool) -> str:
        roles = dict(self.roles)
        if not matrix:
            return roles.get("norm", "f32" if self.family == "gguf" else "bf16")
        if role in roles:
            return roles[role]
        generic = {"expert_gate": "mlp_gate", "expert_up": "mlp_up", "expert_down": "mlp_down",
                   "pos_embed": "embed"}.get(role)
        if generic and generic in roles:
            return roles[generic]
        return roles["default"]


@dataclass(frozen=True)
class FormatTable:
    storage: dict[str, StorageType]
    formats: dict[str, WeightFormat]

    def __hash__(self):  # a table is loaded once per process; identity is enough for caching
        return id(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FormatTable:
        storage = {}
        for sid, d in data["storage_types"].items():
            storage[sid] = StorageType(sid, float(d["bits_per_weight"]), float(d.get("per_out_row_bits", 0) or 0),
                                       float(d.get("per_in_col_bits", 0) or 0), d.get("source", ""))
        formats = {}
        for fid, d in data["formats"].items():
            mb = d.get("more_bits") or {}
            fmt = WeightFormat(fid, d["family"], d.get("label", fid), d.get("compute_dtype", "bf16"),
                               tuple(sorted(d["roles"].items())), tuple(mb.get("roles", ())),
                               mb.get("storage_type", ""), d.get("notes", ""), d.get("source", ""))
            for _, st in fmt.roles + ((("more", fmt.more_bits_type),) if fmt.more_bits_type else ()):
                if st not in storage:
                    raise PlannerInputError(f"weight_formats.json:{fid}", f"unknown storage type {st!r}")
            formats[fid] = fmt
        return cls(storage, formats)

    def get(self, fmt_id: str) -> WeightFormat:
        key = _normalise(fmt_id)
        for fid, fmt in self.formats.items():
            if _normalise(fid) == key:
                return fmt
        raise PlannerInputError("weights", f"unknown weight format {fmt_id!r}",
                                f"choose one of {', '.join(self.formats)}")


def _normalise(name: str) -> str:
    return str(name).lower().replace("_", "-")


def use_more_bits(layer: np.ndarray, n_layers: int) -> np.ndarray:
    """llama.cpp's use_more_bits(i, n): i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (integer n/8)."""
    eighth = n_layers // 8
    return (layer < eighth) | (layer >= 7 * n_layers // 8) | ((layer - eighth) % 3 == 2)


def format_from_quantization_config(spec: ModelSpec, table: FormatTable) -> str | None:
    """The weight format a checkpoint's ``quantization_config`` declares, or None."""
    q = spec.quant
    if not q:
        return None
    method = str(q.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        bits = int(q.get("bits", q.get("w_bit", 4)))
        group = int(q.get("group_size", q.get("q_group_size", 128)))
        return _parametric(table, method, bits, group)
    if method == "bitsandbytes":
        if q.get("load_in_8bit"):
            return "bnb-int8"
        kind = str(q.get("bnb_4bit_quant_type", "fp4")).lower()
        return f"bnb-{kind}" + ("-dq" if q.get("bnb_4bit_use_double_quant") else "")
    if method in ("fp8", "compressed-tensors", "fbgemm_fp8"):
        return "fp8-block" if q.get("weight_block_size") and "fp8-block" in table.formats else "fp8"
    if method == "mxfp4" and "mxfp4" in table.formats:
        return "mxfp4"
    raise PlannerInputError("config.json:quantization_config", f"quant_method {method!r} is not modelled",
                            "pick a weight format explicitly")


def _parametric(table: FormatTable, method: str, bits: int, group: int) -> str:
    """Find or register GPTQ/AWQ storage for any bit width and group size."""
    gname = "perchannel" if group in (-1, 0) else f"g{group}"
    fid = f"{method}-{bits}bit-{gname}"
    if fid in table.formats:
        return fid
    if bits not in (2, 3, 4, 8):
        raise PlannerInputError("config.json:quantization_config.bits", f"{bits}-bit {method.upper()} is not supported",
                                "use 2, 3, 4 or 8 bits")
    template = table.formats[f"{method}-4bit-g128"]
    cols = 32 if method == "gptq" else 0  # GPTQ g_idx: one int32 per input column
    per_weight = bits + ((16 + bits) / group if group > 0 else 0)
    per_row = (16 + bits) if group <= 0 else 0  # per-channel: one scale+zero per output row
    sid = f"{method}_{bits}b_{gname}"
    table.storage[sid] = StorageType(sid, per_weight, per_row, cols,
                                     "formula: bits + (fp16 scale + packed zero) / group_size (see docs/weight-formats.md)")
    roles = tuple((r, sid if st == dict(template.roles)["default"] else st) for r, st in template.roles)
    table.formats[fid] = WeightFormat(fid, template.family, f"{method.upper()} {bits}-bit {gname}",
                                      template.compute_dtype, roles, notes=template.notes, source=template.source)
    return fid


@lru_cache(maxsize=512)
def tensor_bytes(spec: ModelSpec, table: FormatTable, fmt_id: str) -> pd.DataFrame:
    """The inventory with each tensor's storage type and bytes under ``fmt_id``."""
    fmt = table.get(fmt_id)
    inv = inventory(spec).copy()
    st = [fmt.storage_for(r, m) for r, m in zip(inv["role"], inv["matrix"], strict=True)]
    if fmt.more_bits_type:
        bump = inv["role"].isin(fmt.more_bits_roles).to_numpy() & use_more_bits(inv["layer"].to_numpy(), spec.num_layers)
        bump &= inv["layer"].to_numpy() >= 0
        st = np.where(bump, fmt.more_bits_type, st)
    inv["storage"] = st
    bpw = np.array([table.storage[s].bits_per_weight for s in st])
    row_bits = np.array([table.storage[s].per_out_row_bits for s in st])
    col_bits = np.array([table.storage[s].per_in_col_bits for s in st])
    mat = inv["matrix"].to_numpy()
    bits = inv["params"] * bpw + inv["count"] * np.where(mat, inv["rows"] * row_bits + inv["cols"] * col_bits, 0)
    inv["bytes"] = bits / 8
    inv["active_bytes"] = inv["bytes"] * inv["active"] / inv["count"]
    return inv


def weight_bytes(spec: ModelSpec, table: FormatTable, fmt_id: str) -> float:
    return float(tensor_bytes(spec, table, fmt_id)["bytes"].sum())


def bits_per_weight(spec: ModelSpec, table: FormatTable, fmt_id: str) -> float:
    """Average stored bits per parameter of the whole model (embeddings and norms included)."""
    df = tensor_bytes(spec, table, fmt_id)
    return float(df["bytes"].sum() * 8 / df["params"].sum())
