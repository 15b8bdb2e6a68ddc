"""A checkpoint's ``quantization_config``: the weight format it declares, and the tensors it stores otherwise.

``read(spec, table)`` turns config.json's quantization_config into

* the weight format id: an entry of profiles/weight_formats.json, or one derived from an entry for a bit
  width, group size or block size the file does not list (``FormatTable.get (variants built from their names)``), and
* ``rules``: which tensors the checkpoint keeps in another storage type. The ignore lists keep tensors in
  16 bit (compressed-tensors ``ignore``, transformers ``modules_to_not_convert`` and
  ``llm_int8_skip_modules``, vLLM ``ignored_layers``, GPTQModel ``dynamic`` "-:" keys, ModelOpt
  ``exclude_modules``); compressed-tensors and ModelOpt quantize every Linear, lm_head and MoE routers
  included, unless listed.

Tensors are matched by their Hugging Face module names (``module_names``: ``model.layers.{i}.self_attn.q_proj``
...), each list in its own method's syntax (``SYNTAX``). docs/weight-formats.md gives the rules and sources.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import PlannerInputError
from .params import inventory
from .spec import ModelSpec

if TYPE_CHECKING:
    from .formats import FormatTable, WeightFormat

FIELD = "config.json:quantization_config"
MAX_PATTERNS = 20_000   # entries in one list (Qwen3-235B-FP8 lists 283)
MAX_PATTERN_CHARS = 300
# a quantifier on a group ("(a+)+", "(.*)*"): the shape of a regex that backtracks exponentially
_NESTED = re.compile(r"\)[*+{]")
# how each list is matched against a module name (the library that reads it, and where)
SYNTAX = {
    "transformers": "transformers quantizers/quantizers_utils.py should_convert_module: the key as a regex from the "
                    "start up to a module boundary, or a suffix",
    "compressed-tensors": "compressed-tensors is_match: 're:' + a regex (re.match), else the exact module name; "
                          "'Linear' is every linear layer",
    "modelopt": "vLLM modelopt.py is_layer_excluded: the exact name, a substring, or an fnmatch wildcard",
    "regex": "GPTQModel dynamic: '-:' + a regex (re.match) skips the module",
}
_KEEP_KEYS = ("modules_to_not_convert", "llm_int8_skip_modules", "ignored_layers")
_LEAVES = {
    "attn_q": ("self_attn.q_proj", "self_attn.q_a_proj", "self_attn.q_b_proj", "self_attn.qkv_proj", "attn.c_attn",
               "self_attention.query_key_value"),
    "attn_k": ("self_attn.k_proj", "self_attn.kv_a_proj_with_mqa", "self_attn.qkv_proj", "attn.c_attn",
               "self_attention.query_key_value"),
    "attn_v": ("self_attn.v_proj", "self_attn.kv_b_proj", "self_attn.qkv_proj", "attn.c_attn",
               "self_attention.query_key_value"),
    "attn_o": ("self_attn.o_proj", "self_attn.out_proj", "attn.c_proj", "self_attention.dense"),
    "mlp_up": ("mlp.up_proj", "mlp.gate_up_proj", "mlp.c_fc", "mlp.dense_h_to_4h", "fc1"),
    "mlp_gate": ("mlp.gate_proj", "mlp.gate_up_proj"),
    "mlp_down": ("mlp.down_proj", "mlp.c_proj", "mlp.dense_4h_to_h", "fc2"),
    "shared_up": ("mlp.shared_expert.up_proj", "mlp.shared_experts.up_proj"),
    "shared_gate": ("mlp.shared_expert.gate_proj", "mlp.shared_experts.gate_proj"),
    "shared_down": ("mlp.shared_expert.down_proj", "mlp.shared_experts.down_proj"),
    "expert_up": ("mlp.experts.{e}.up_proj",),
    "expert_gate": ("mlp.experts.{e}.gate_proj",),
    "expert_down": ("mlp.experts.{e}.down_proj",),
    "router": ("mlp.gate", "mlp.router", "block_sparse_moe.gate", "mlp.shared_expert_gate"),
    "ssm_in": ("mixer.in_proj", "linear_attn.in_proj_qkvz", "linear_attn.in_proj_ba", "mamba.in_proj"),
    "ssm_out": ("mixer.out_proj", "linear_attn.out_proj", "mamba.out_proj"),
    "ssm_x": ("mixer.x_proj", "mamba.x_proj"),
    "ssm_dt": ("mixer.dt_proj", "mamba.dt_proj"),
}
_OUTSIDE = {"embed": ("model.embed_tokens", "transformer.wte", "model.decoder.embed_tokens", "transformer.word_embeddings"),
            "pos_embed": ("transformer.wpe", "model.decoder.embed_positions"),
            "embed_proj": ("model.decoder.project_in", "model.decoder.project_out"),
            "lm_head": ("lm_head", "language_model.lm_head")}
_EXPERTS = {  # the families whose routed experts are named otherwise
    "mixtral": {"expert_up": ("block_sparse_moe.experts.{e}.w3",), "expert_gate": ("block_sparse_moe.experts.{e}.w1",),
                "expert_down": ("block_sparse_moe.experts.{e}.w2",)},
    "gpt_oss": {"expert_up": ("mlp.experts.gate_up_proj",), "expert_gate": ("mlp.experts.gate_up_proj",),
                "expert_down": ("mlp.experts.down_proj",)},
}
_LITERAL = re.compile(r"[A-Za-z0-9_.]+")
_PREFIX = {"gpt2": "transformer.h.{i}.", "falcon": "transformer.h.{i}.", "bloom": "transformer.h.{i}.",
           "opt": "model.decoder.layers.{i}."}
_EMBEDDING_ROLES = ("embed", "pos_embed")  # nn.Embedding, not Linear: no method quantizes them here


@dataclass(frozen=True)
class Rule:
    """Tensors whose module names match ``patterns`` (in ``syntax``) are stored as ``storage``
    (``"keep"``: the format's 16-bit type; ``"quant"``: its quantized default; else a storage id)."""

    patterns: tuple[str, ...]
    syntax: str
    storage: str
    field: str


@dataclass(frozen=True)
class CheckpointQuant:
    method: str
    format_id: str
    rules: tuple[Rule, ...] = ()
    notes: tuple[str, ...] = ()


def module_names(spec: ModelSpec) -> list[tuple[str, ...]]:
    """Per inventory row, the Hugging Face module names its tensors may have (one per expert for routed
    experts, so that a list naming some experts covers that share of the row). 1-D rows have none."""
    inv = inventory(spec)
    prefixes = [_PREFIX.get(spec.model_type, "model.layers.{i}.")]
    if spec.vision_tensors or spec.model_type.endswith("_text"):
        # an image-text checkpoint names its text layers under the language model (Gemma 3/4, Qwen3-VL and
        # Qwen3.5: model.language_model.layers.{i}., transformers' *ForConditionalGeneration)
        prefixes.append("model.language_model.layers.{i}.")
    # a remote-code image-text wrapper holding a whole causal LM (Kimi K2.5 / K2.6: KimiK25ForConditionalGeneration's
    # language_model is a DeepseekV3ForCausalLM; nvidia's NVFP4 copy ignores 'language_model.model.layers.{i}.self_attn*'):
    # its text config is read as the model, so the wrapper's names are one more alias of every text layer
    prefixes.append("language_model." + prefixes[0])
    out: list[tuple[str, ...]] = []
    for comp, role, layer, count, matrix in zip(inv["component"], inv["role"], inv["layer"], inv["count"],
                                                inv["matrix"], strict=True):
        if not matrix:
            out.append(())
        elif layer < 0:
            out.append(_OUTSIDE.get(role, ()))
        else:
            key = role.replace("mlp_", "shared_") if comp == "experts" and role.startswith("mlp_") else role
            table = _EXPERTS.get(spec.model_type, {}) if role.startswith("expert_") else {}
            leaves = [p.format(i=layer) + leaf for leaf in table.get(key) or _LEAVES.get(key, ()) for p in prefixes]
            if role.startswith("expert_"):
                leaves = [leaf.format(e=e) for e in range(int(count)) for leaf in leaves]
            out.append(tuple(leaves))
    return out


def _check_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PATTERNS:
        raise PlannerInputError(field, f"must be a list of at most {MAX_PATTERNS:,} module names",
                                'e.g. ["lm_head", "re:.*mlp.gate$"]')
    for v in value:
        if not isinstance(v, str) or not v or len(v) > MAX_PATTERN_CHARS:
            raise PlannerInputError(field, f"holds {str(v)[:40]!r}: each entry must be a module name of 1 to "
                                    f"{MAX_PATTERN_CHARS} characters", "fix or remove that entry")
    return tuple(value)


def _regex(pattern: str, field: str) -> str:
    """A user regex, refused when it could backtrack exponentially or does not compile."""
    if _NESTED.search(pattern):
        raise PlannerInputError(field, f"pattern {pattern[:60]!r} quantifies a group (exponential matching)",
                                "write it without a quantifier after ')'")
    try:
        re.compile(pattern)
    except re.error as e:
        raise PlannerInputError(field, f"pattern {pattern[:60]!r} is not a regular expression ({e})",
                                "fix the pattern") from None
    return pattern


def _matcher(rule: Rule):
    """A function names -> bool array for ``rule`` (one compiled regex per list, so long lists stay fast)."""
    keys = rule.patterns
    if rule.syntax == "role":
        return None
    if rule.syntax == "transformers":
        # a literal key (letters, digits, _ and .) matches a name it is a dotted prefix of: set lookups
        # instead of one long regex alternation (Qwen3-235B-FP8 lists 283 names, its experts 36,000)
        names = {k.rstrip(".") for k in keys if _LITERAL.fullmatch(k)}
        alt = "|".join(f"(?:{_regex(k, rule.field)})" for k in keys if not _LITERAL.fullmatch(k))
        rx = re.compile(rf"(?:{alt})(?:(?<=\.)|(?=\.|$))") if alt else None
        ends = tuple(keys)
        return lambda n: (n.endswith(ends) or any(p in names for p in _prefixes(n)) or bool(rx and rx.match(n)))
    if rule.syntax == "regex":
        rx = re.compile("|".join(f"(?:{_regex(k, rule.field)})" for k in keys))
        return lambda n: bool(rx.match(n))
    if rule.syntax == "compressed-tensors":
        exact = {k for k in keys if not k.startswith("re:")}
        res = [_regex(k[3:], rule.field) for k in keys if k.startswith("re:")]
        rx = re.compile("|".join(f"(?:{r})" for r in res)) if res else None
        linear = any(k.endswith("Linear") and "." not in k for k in exact)
        return lambda n: linear or n in exact or bool(rx and rx.match(n))
    subs = re.compile("|".join(re.escape(k) for k in keys))  # modelopt: exact, substring, wildcard
    globs = re.compile("|".join(f"(?:{fnmatch.translate(k)})" for k in keys if any(c in k for c in "*?[")) or "(?!)")
    return lambda n: bool(subs.search(n)) or bool(globs.match(n))


def _prefixes(name: str):
    """'a.b.c' -> 'a', 'a.b', 'a.b.c'."""
    i = name.find(".")
    while i != -1:
        yield name[:i]
        i = name.find(".", i + 1)
    yield name


@lru_cache(maxsize=64)
def storage_fractions(spec: ModelSpec, table: FormatTable, fmt: WeightFormat) -> dict[str, np.ndarray]:
    """{storage id: share of each inventory row's tensors stored that way} for the rules of the checkpoint's
    own format (empty for any other format: an ignore list belongs to one checkpoint)."""
    try:
        cq = read(spec, table)
    except PlannerInputError:
        # a quantization_config the planner does not model: the format was picked explicitly (as the refusal
        # of the checkpoint's own says to), and that format stores every tensor its own way
        return {}
    if cq is None or fmt.id != cq.format_id or not cq.rules:
        return {}
    inv = inventory(spec)
    names = module_names(spec)
    roles = inv["role"].to_numpy()
    base = np.array([fmt.storage_for(r, True) for r in roles])
    copies = np.where(inv["role"].str.startswith("expert_").to_numpy(), inv["count"].to_numpy(), 1)
    final = [np.full(int(n), b, dtype=object) for n, b in zip(copies, base, strict=True)]
    for rule in cq.rules:
        target = _target(rule, fmt)
        if rule.syntax == "role":
            hit_rows = np.isin(roles, rule.patterns) & inv["matrix"].to_numpy()
            for i in np.flatnonzero(hit_rows):
                final[i][:] = target
            continue
        match = _matcher(rule)
        for i, row in enumerate(names):
            if row and roles[i] not in _EMBEDDING_ROLES:
                _apply(final[i], row, match, target, roles[i])
    return _shares(final, base, roles)


def _apply(final: np.ndarray, row: tuple[str, ...], match, target: str, role: str) -> None:
    per = len(row) // len(final)  # the aliases of one tensor (expert rows: of each expert in turn)
    hits = np.fromiter((match(n) for n in row), dtype=bool, count=len(row))
    final[hits.reshape(len(final), per).any(axis=1)] = target


def _target(rule: Rule, fmt: WeightFormat) -> str:
    if rule.storage == "keep":
        return fmt.storage_for("embed", True)
    if rule.storage == "quant":
        return dict(fmt.roles)["default"]
    return rule.storage


def _shares(final: list[np.ndarray], base: np.ndarray, roles: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, row in enumerate(final):
        kinds, counts = np.unique(row.astype(str), return_counts=True)
        for k, c in zip(kinds, counts, strict=True):
            if k != base[i]:
                out.setdefault(str(k), np.zeros(len(final)))[i] = c / len(row)
    return out


# ---- readers, one per quant_method ----------------------------------------------------------------------
def _keep_rules(q: dict, syntax: str = "transformers") -> tuple[Rule, ...]:
    out = []
    for key in _KEEP_KEYS:
        pats = _check_list(q.get(key), f"{FIELD}.{key}")
        if pats:
            out.append(Rule(pats, syntax, "keep", f"{FIELD}.{key}"))
    return tuple(out)


def _int(q: dict, keys: tuple[str, ...], default: int, low: int, high: int) -> int:
    for k in keys:
        if k in q and q[k] is not None:
            v = q[k]
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise PlannerInputError(f"{FIELD}.{k}", f"must be a whole number from {low} to {high}, got {v!r}")
            return v
    return default


def _gptq(q: dict, table: FormatTable) -> CheckpointQuant:
    bits = _int(q, ("bits",), 4, 2, 8)
    group = _int(q, ("group_size",), 128, -1, 1 << 20)
    rules = list(_keep_rules(q))
    dynamic = q.get("dynamic") or {}
    if not isinstance(dynamic, dict):
        raise PlannerInputError(f"{FIELD}.dynamic", "must be an object of module patterns")
    skip = tuple(k[2:] for k in dynamic if isinstance(k, str) and k.startswith("-:"))
    if skip:
        rules.append(Rule(_check_list(list(skip), f"{FIELD}.dynamic"), "regex", "keep", f"{FIELD}.dynamic"))
    if q.get("lm_head") is True:  # GPTQModel quantizes the output head on request
        rules.append(Rule(("lm_head",), "role", "quant", f"{FIELD}.lm_head"))
    notes = ("GPTQModel dynamic '+:' overrides (per-module bits) are not modelled",) if any(
        isinstance(k, str) and k.startswith("+:") for k in dynamic) else ()
    return CheckpointQuant("gptq", table.gptq_awq("gptq", bits, group), tuple(rules), notes)


def _awq(q: dict, table: FormatTable) -> CheckpointQuant:
    bits = _int(q, ("bits", "w_bit"), 4, 2, 8)
    group = _int(q, ("group_size", "q_group_size"), 128, -1, 1 << 20)
    zero = q.get("zero_point", True) is not False
    return CheckpointQuant("awq", table.gptq_awq("awq", bits, group, zero), _keep_rules(q))


def _bnb(q: dict, table: FormatTable) -> CheckpointQuant:
    if q.get("load_in_8bit"):
        fid = "bnb-int8"
    else:
        kind = str(q.get("bnb_4bit_quant_type") or "fp4").lower()
        if kind not in ("nf4", "fp4"):
            raise PlannerInputError(f"{FIELD}.bnb_4bit_quant_type", f"{kind[:20]!r} is not nf4 or fp4")
        fid = f"bnb-{kind}" + ("-dq" if q.get("bnb_4bit_use_double_quant") else "")
    return CheckpointQuant("bitsandbytes", fid, _keep_rules(q))


def _fp8(q: dict, table: FormatTable) -> CheckpointQuant:
    block = q.get("weight_block_size")
    fid = table.fp8_block(block, f"{FIELD}.weight_block_size") if block else "fp8-tensor"
    return CheckpointQuant("fp8", fid, _keep_rules(q))


def _fbgemm(q: dict, table: FormatTable) -> CheckpointQuant:
    return CheckpointQuant("fbgemm_fp8", "fp8", _keep_rules(q))  # fbgemm stores one scale per output row


def _mxfp4(q: dict, table: FormatTable) -> CheckpointQuant:
    return CheckpointQuant("mxfp4", "mxfp4", _keep_rules(q))


MODELOPT_ALGOS = {"FP8": "fp8-tensor", "FP8_PER_CHANNEL_PER_TOKEN": "fp8", "FP8_PB_WO": "fp8-block", "NVFP4": "nvfp4"}


def _modelopt(q: dict, table: FormatTable) -> CheckpointQuant:
    inner = q.get("quantization") if isinstance(q.get("quantization"), dict) else q
    algo = str(inner.get("quant_algo") or "").upper()
    if algo not in MODELOPT_ALGOS:
        raise PlannerInputError(f"{FIELD}.quant_algo", f"ModelOpt {algo[:30]!r} is not modelled",
                                f"choose one of {', '.join(MODELOPT_ALGOS)} or pick a weight format explicitly")
    fid = MODELOPT_ALGOS[algo]
    if algo == "NVFP4":
        fid = table.nvfp4(_int(inner, ("group_size",), 16, 1, 1 << 20))
    key = "exclude_modules" if "exclude_modules" in inner else "ignore"
    rules = [Rule(("Linear",), "compressed-tensors", "quant", f"{FIELD}.quant_algo")]
    pats = _check_list(inner.get(key), f"{FIELD}.{key}")
    if pats:
        rules.append(Rule(pats, "modelopt", "keep", f"{FIELD}.{key}"))
    return CheckpointQuant("modelopt", fid, tuple(rules))


def _ct_weights(w: Any, table: FormatTable, field: str, with_activations: bool) -> str | None:
    """The weight format of one compressed-tensors group's ``weights`` scheme (None: weights unquantized)."""
    if w is None:
        return None
    if not isinstance(w, dict):
        raise PlannerInputError(f"{field}.weights", "must be an object (num_bits, type, strategy, group_size)")
    bits = _int(w, ("num_bits",), 8, 1, 16)
    kind, strategy = str(w.get("type") or "int").lower(), str(w.get("strategy") or "tensor").lower()
    group = _int(w, ("group_size",), -1, -1, 1 << 20)
    if kind == "float" and bits == 8:
        if strategy == "block":
            return table.fp8_block(w.get("block_structure") or [128, 128], f"{field}.weights.block_structure")
        return "fp8" if strategy == "channel" else "fp8-tensor"
    if kind == "float" and bits == 4 and group in (16, 32):
        return table.nvfp4(16) if group == 16 else "mxfp4"
    if kind == "int" and bits == 8 and with_activations and strategy in ("channel", "tensor"):
        return "w8a8-int8"
    if kind == "int" and 2 <= bits <= 8 and (group > 0 or strategy == "channel"):
        sym = w.get("symmetric", True) is not False
        actorder = str(w.get("actorder") or "").lower() == "group"
        return table.wna16(bits, group if strategy != "channel" else -1, sym, actorder)
    raise PlannerInputError(f"{field}.weights", f"{kind} {bits}-bit '{strategy}' weights are not modelled",
                            "pick a weight format explicitly")


def _compressed_tensors(q: dict, table: FormatTable) -> CheckpointQuant:
    groups = q.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        raise PlannerInputError(f"{FIELD}.config_groups", "must name at least one quantization group",
                                "use the checkpoint's own config.json")
    rules, fid, notes = [], None, []
    for name, g in groups.items():
        field = f"{FIELD}.config_groups.{str(name)[:40]}"
        if not isinstance(g, dict):
            raise PlannerInputError(field, "must be an object with targets and weights")
        gid = _ct_weights(g.get("weights"), table, field, bool(g.get("input_activations")))
        if gid is None:
            notes.append(f"{str(name)[:40]}: no weight quantization")
            continue
        sid = dict(table.get(gid).roles)["default"] if gid != "mxfp4" else "mxfp4"
        targets = _check_list(g.get("targets") or ["Linear"], f"{field}.targets")
        rules.append(Rule(targets, "compressed-tensors", sid, f"{field}.targets"))
        fid = fid or gid
    if fid is None:
        return CheckpointQuant("compressed-tensors", "bf16", (), tuple(notes))
    ignore = _check_list(q.get("ignore"), f"{FIELD}.ignore")
    if ignore:
        rules.append(Rule(ignore, "compressed-tensors", "keep", f"{FIELD}.ignore"))
    return CheckpointQuant("compressed-tensors", fid, tuple(rules), tuple(notes))


READERS = {"gptq": _gptq, "awq": _awq, "bitsandbytes": _bnb, "fp8": _fp8, "fbgemm_fp8": _fbgemm, "mxfp4": _mxfp4,
           "modelopt": _modelopt, "compressed-tensors": _compressed_tensors}


@lru_cache(maxsize=256)
def read(spec: ModelSpec, table: FormatTable) -> CheckpointQuant | None:
    """The checkpoint's own format and storage rules, None for an unquantized config."""
    q = spec.quant
    if not q:
        return None
    method = str(q.get("quant_method") or "").lower()
    reader = READERS.get(method)
    if reader is None:
        raise PlannerInputError(f"{FIELD}.quant_method", f"quant_method {method[:40]!r} is not modelled",
                                f"pick a weight format explicitly (modelled: {', '.join(READERS)})")
    try:
        cq = reader(q, table)
    except PlannerInputError as e:
        if q.get("_file") != "hf_quant_config.json":
            raise
        # read from the file beside config.json (planner/profiles.with_quant_file): name the field there
        field = e.field.replace(FIELD, "hf_quant_config.json:quantization")
        raise PlannerInputError(field, e.problem, e.fix) from None
    for rule in cq.rules:
        _matcher(rule)  # every pattern compiles (and is refused here, at load, when it cannot)
    return cq


@dataclass(frozen=True)
class KvScheme:
    """The KV-cache quantization a checkpoint declares: ``dtype`` the cache it asks for ("fp8", "nvfp4"), or ""
    for a scheme no engine maps (then its ``auto`` keeps the model dtype); ``method`` its quant_method;
    ``per_tensor_symmetric`` whether a compressed-tensors scheme is static, symmetric and per tensor (SGLang maps
    only those); ``weights_algo`` ModelOpt's quant_algo; ``field`` where it was read."""

    dtype: str
    method: str
    field: str
    per_tensor_symmetric: bool = True
    weights_algo: str = ""


def kv_scheme(spec: ModelSpec) -> KvScheme | None:
    """The KV scheme of the checkpoint's quantization_config, read as vLLM reads it
    (v0.14.0 vllm/utils/torch_utils.py ``get_kv_cache_quant_algo_string``): ``kv_cache_scheme``, then
    ``kv_cache_quant_algo``, in the ``quantization`` block of hf_quant_config.json or at the top. The string "FP8"
    or a static 8-bit float scheme (``{"num_bits": 8, "type": "float", "dynamic": false}``) is an fp8 cache, "NVFP4"
    or a 4-bit float scheme an nvfp4 one, anything else a scheme no engine maps. None when it declares none."""
    q = spec.quant
    if not q:
        return None
    inner = q.get("quantization") if isinstance(q.get("quantization"), dict) else q
    where = "hf_quant_config.json:quantization" if q.get("_file") == "hf_quant_config.json" else FIELD
    method = str(q.get("quant_method") or "").lower()
    algo = str(inner.get("quant_algo") or "").upper()
    for key in ("kv_cache_scheme", "kv_cache_quant_algo"):
        for block, name in ((inner, where), (q, FIELD)):
            v = block.get(key)
            if not v:
                continue
            if isinstance(v, dict):  # anything but the documented fields is a scheme no engine maps ("")
                static_float = v.get("dynamic") is False and str(v.get("type")).lower() == "float"
                bits = v.get("num_bits")
                dtype = {8: "fp8", 4: "nvfp4"}.get(bits, "") if static_float and type(bits) is int else ""
                symmetric = str(v.get("symmetric", True)).lower() not in ("false", "0", "none")
                tensor = str(v.get("strategy") or "tensor").lower() == "tensor" and symmetric
                return KvScheme(dtype, method, f"{name}.{key}", tensor, algo)
            dtype = {"fp8": "fp8", "nvfp4": "nvfp4"}.get(str(v).strip().lower(), "")
            return KvScheme(dtype, method, f"{name}.{key}", True, algo)
    return None
