"""Weight memory by format: bytes of every tensor under fp16/bf16/fp8, bitsandbytes, GPTQ, AWQ,
compressed-tensors, ModelOpt NVFP4, MXFP4 and GGUF.

The figures (bits per weight with scales and zero points, which tensors each method leaves in
16 bit, GGUF's per-tensor mixes) live in ``profiles/weight_formats.json`` with their sources;
docs/weight-formats.md explains each. Checkpoints with a group size, bit width or block size not
listed there get their storage type from the same formula the listed ones use (``FormatTable.derive``):
``bits + (16-bit scale + bits-wide packed zero) / group_size`` per weight for GPTQ/AWQ (plus GPTQ's
int32 ``g_idx`` per input column), ``8 + 32 / (block rows x cols)`` for block fp8, ``4 + 8 / group`` for
NVFP4. A checkpoint's own ignore lists (planner/quantconfig.py) and, when known, its safetensors bytes
(planner/checkpoint.py) refine the bytes of its own format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from . import checkpoint, quantconfig
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
    kernel: str = ""  # the profiles/kernels.json family its matmuls run like (default: by family)

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
                               mb.get("storage_type", ""), d.get("notes", ""), d.get("source", ""),
                               d.get("kernel", ""))
            for _, st in fmt.roles + ((("more", fmt.more_bits_type),) if fmt.more_bits_type else ()):
                if st not in storage:
                    raise PlannerInputError(f"weight_formats.json:{fid}", f"unknown storage type {st!r}")
            formats[fid] = fmt
        return cls(storage, formats)

    def get(self, fmt_id: str) -> WeightFormat:
        """A bundled format, or a variant of one named as the methods below name it (GPTQ/AWQ, W{n}A16,
        block fp8, NVFP4 at other bits, groups or blocks): built from its name on demand, so the
        table itself never changes."""
        key = _normalise(fmt_id)
        for fid, fmt in self.formats.items():
            if _normalise(fid) == key:
                return fmt
        d = _derived_format(key)
        if d is not None and d[0] in self.formats:
            template, st, label = d
            base = self.formats[template]
            default = dict(base.roles)["default"]
            roles = tuple((r, st.id if s == default else s) for r, s in base.roles)
            return WeightFormat(key, base.family, label, base.compute_dtype, roles, notes=base.notes,
                                source=base.source, kernel=base.kernel)
        raise PlannerInputError("weights", f"unknown weight format {fmt_id!r}",
                                f"choose one of {', '.join(self.formats)}")

    def storage_type(self, sid: str) -> StorageType:
        """A bundled storage type, or a derived format's (its bits by the formula its method states)."""
        if sid in self.storage:
            return self.storage[sid]
        st = _derived_storage(sid)
        if st is None:
            raise PlannerInputError("weights", f"unknown storage type {sid!r}", "see profiles/weight_formats.json")
        return st

    def _known(self, fid: str) -> str:
        """``fid`` as the table spells it when it is bundled (a bundled format keeps its id)."""
        return next((f for f in self.formats if _normalise(f) == fid), fid)

    def gptq_awq(self, method: str, bits: int, group: int, zero_point: bool = True) -> str:
        """GPTQ/AWQ at any bit width (2-8) and group size (-1 or 0: one group per output row)."""
        if not 2 <= bits <= 8:
            raise PlannerInputError("config.json:quantization_config.bits", f"{bits}-bit {method.upper()} is not supported",
                                    "use 2 to 8 bits")
        gname = "perchannel" if group <= 0 else f"g{group}"
        return self._known(f"{method}-{bits}bit-{gname}" + ("" if zero_point else "-nozp"))

    def wna16(self, bits: int, group: int, symmetric: bool = True, actorder: bool = False) -> str:
        """compressed-tensors W{bits}A16 (pack-quantized): packed ints + a 16-bit scale per group (or per
        output row), a packed zero point when asymmetric, an int32 g_idx per input column with actorder."""
        gname = "channel" if group <= 0 else f"g{group}"
        return self._known(f"w{bits}a16-{gname}" + ("" if symmetric else "-asym") + ("-actorder" if actorder else ""))

    def fp8_block(self, block, field: str) -> str:
        """Block-scaled fp8: 8 bits + one fp32 scale per block of ``block`` = [rows, cols] weights."""
        if (not isinstance(block, list | tuple) or len(block) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) and 0 < b <= 1 << 16 for b in block)):
            raise PlannerInputError(field, f"must be two block sizes such as [128, 128], got {str(block)[:40]}")
        if list(block) == [128, 128]:
            return "fp8-block"
        return self._known(f"fp8-block-{block[0]}x{block[1]}")

    def nvfp4(self, group: int) -> str:
        """NVFP4: 4-bit codes + one fp8 (e4m3) scale per ``group`` weights (16 in every ModelOpt export)."""
        return "nvfp4" if group == 16 else self._known(f"nvfp4-g{group}")


# The derived formats: (format id pattern, storage id pattern, a builder of (template format, storage,
# label) from the pattern's groups). Their bits per weight are the formula each method states.
def _gptq_awq(method, bits, gname, nozp):
    group, zero = (-1 if gname == "perchannel" else int(gname[1:])), (0 if nozp else int(bits))
    bits = int(bits)
    st = StorageType(f"{method}_{bits}b_{gname}" + ("_nozp" if nozp else ""), bits + ((16 + zero) / group if group > 0 else 0),
                     (16 + zero) if group <= 0 else 0, 32 if method == "gptq" else 0,
                     "formula: bits + (fp16 scale + packed zero) / group_size (see docs/weight-formats.md)")
    return f"{method}-4bit-g128", st, f"{method.upper()} {bits}-bit {gname}"


def _wna16(bits, gname, asym, actorder):
    group, bits = (-1 if gname == "channel" else int(gname[1:])), int(bits)
    zero = bits if asym else 0
    st = StorageType(f"int{bits}_{gname}" + ("_asym" if asym else "") + ("_gidx" if actorder else ""),
                     bits + ((16 + zero) / group if group > 0 else 0), (16 + zero) if group <= 0 else 0,
                     32 if actorder else 0, "formula: bits + (16-bit scale + packed zero if asymmetric) / group_size")
    return "w4a16-g128", st, f"W{bits}A16 {gname}"


def _fp8_block(a, b):
    a, b = int(a), int(b)
    return "fp8-block", StorageType(f"fp8_e4m3_block{a}x{b}", 8 + 32 / (a * b), 0, 0,
                                    "formula: 8 + 32 / (block rows x cols)"), f"FP8 block {a}x{b}"


def _nvfp4(group):
    g = int(group)
    return "nvfp4", StorageType(f"nvfp4_g{g}", 4 + 8 / g, 0, 0, "formula: 4 + 8 / group_size"), f"NVFP4 group {g}"


_DERIVED = (
    (r"(gptq|awq)-([2-8])bit-(perchannel|g[1-9]\d*)(-nozp)?", r"(gptq|awq)_([2-8])b_(perchannel|g[1-9]\d*)(_nozp)?",
     _gptq_awq),
    (r"w([2-8])a16-(channel|g[1-9]\d*)(-asym)?(-actorder)?", r"int([2-8])_(channel|g[1-9]\d*)(_asym)?(_gidx)?", _wna16),
    (r"fp8-block-([1-9]\d*)x([1-9]\d*)", r"fp8_e4m3_block([1-9]\d*)x([1-9]\d*)", _fp8_block),
    (r"nvfp4-g([1-9]\d*)", r"nvfp4_g([1-9]\d*)", _nvfp4),
)


def _derived_format(fid: str):
    for fpat, _, build in _DERIVED:
        m = re.fullmatch(fpat, fid)
        if m:
            return build(*m.groups())
    return None


def _derived_storage(sid: str) -> StorageType | None:
    for _, spat, build in _DERIVED:
        m = re.fullmatch(spat, sid)
        if m:
            return build(*m.groups())[1]
    return None


def _normalise(name: str) -> str:
    return str(name).lower().replace("_", "-")


def use_more_bits(layer: np.ndarray, n_layers: int) -> np.ndarray:
    """llama.cpp's use_more_bits(i, n): i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (integer n/8)."""
    eighth = n_layers // 8
    return (layer < eighth) | (layer >= 7 * n_layers // 8) | ((layer - eighth) % 3 == 2)


def format_from_quantization_config(spec: ModelSpec, table: FormatTable) -> str | None:
    """The weight format a checkpoint's ``quantization_config`` declares, or None (planner/quantconfig.py)."""
    cq = quantconfig.read(spec, table)
    return cq.format_id if cq else None


@lru_cache(maxsize=512)
def tensor_bytes(spec: ModelSpec, table: FormatTable, fmt_id: str) -> pd.DataFrame:
    """The inventory with each tensor's storage type and bytes under ``fmt_id``.

    Under the checkpoint's own format, rows its ignore lists (or compressed-tensors / ModelOpt groups)
    store otherwise get the matching share of that storage, and when the checkpoint's safetensors bytes
    are known (planner/checkpoint.py) each part is scaled to them: ``frame.attrs["weight_bytes_source"]``
    says which."""
    fmt = table.get(fmt_id)
    inv = inventory(spec).copy()
    st = np.array([fmt.storage_for(r, m) for r, m in zip(inv["role"], inv["matrix"], strict=True)], dtype=object)
    if fmt.more_bits_type:
        bump = inv["role"].isin(fmt.more_bits_roles).to_numpy() & use_more_bits(inv["layer"].to_numpy(), spec.num_layers)
        bump &= inv["layer"].to_numpy() >= 0
        st = np.where(bump, fmt.more_bits_type, st)
    shares = quantconfig.storage_fractions(spec, table, fmt)
    rest = 1.0 - sum(shares.values(), np.zeros(len(inv)))
    bits = rest * _bits(inv, table, st)
    for sid, share in shares.items():
        bits = bits + share * _bits(inv, table, np.full(len(inv), sid, dtype=object))
        st = np.where(share > rest, sid, st)  # the storage most of the row's tensors have
    inv["storage"] = st.astype(str)
    inv["bytes"] = bits / 8
    inv.attrs["weight_bytes_source"] = f"formula: profiles/weight_formats.json ({fmt.id})"
    inv.attrs["formula_bytes"] = float(inv["bytes"].sum())
    ck = checkpoint.scale_for(spec, fmt.id, inv)
    if ck is not None:
        inv["bytes"] = inv["bytes"] * ck[0]
        inv.attrs["weight_bytes_source"] = ck[1]
    inv["active_bytes"] = inv["bytes"] * inv["active"] / inv["count"]
    return inv


def _bits(inv: pd.DataFrame, table: FormatTable, st: np.ndarray) -> np.ndarray:
    """Stored bits of each row with storage ``st``: weights x bpw + per-output-row and per-input-column terms."""
    bpw = np.array([table.storage_type(s).bits_per_weight for s in st])
    row_bits = np.array([table.storage_type(s).per_out_row_bits for s in st])
    col_bits = np.array([table.storage_type(s).per_in_col_bits for s in st])
    mat = inv["matrix"].to_numpy()
    extra = inv["count"] * np.where(mat, inv["rows"] * row_bits + inv["cols"] * col_bits, 0)
    return (inv["params"] * bpw + extra).to_numpy(dtype=float)


def weight_bytes_source(spec: ModelSpec, table: FormatTable, fmt_id: str) -> str:
    """Where ``tensor_bytes(spec, table, fmt_id)`` took its bytes from: the formula, or the checkpoint."""
    return tensor_bytes(spec, table, fmt_id).attrs["weight_bytes_source"]


def weight_bytes(spec: ModelSpec, table: FormatTable, fmt_id: str) -> float:
    return float(tensor_bytes(spec, table, fmt_id)["bytes"].sum())


def bits_per_weight(spec: ModelSpec, table: FormatTable, fmt_id: str) -> float:
    """Average stored bits per parameter of the whole model (embeddings and norms included)."""
    df = tensor_bytes(spec, table, fmt_id)
    return float(df["bytes"].sum() * 8 / df["params"].sum())
