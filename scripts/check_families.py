"""Check profiles/model_families.json's layer rules against transformers' own configuration classes.

For every family with a ``layers`` or ``moe`` rule that transformers ships, build the configuration class on
its defaults and on varied layer counts and rule keys, and compare transformers' ``layer_types`` (and
``mlp_layer_types`` where the class computes it) with what planner/layerrules.py derives from the same keys.
Also records, per model_type whose class computes a non-uniform default pattern, that pattern's period
(``layer_pattern`` in profiles/config_schema.json): the fallback for families without a rule.

    python scripts/check_families.py             # prints mismatches; exit 1 if any
    python scripts/check_families.py --defaults  # the planner vs the meta build at every causal LM's class defaults
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from planner import configschema, layerrules  # noqa: E402
from planner.configschema import Section  # noqa: E402

LEGACY = layerrules.LEGACY


# transformers' NemotronHConfig without a pattern is a 4-block demo whose layer count ignores num_hidden_layers;
# a real Nemotron-H config always gives hybrid_override_pattern or layers_block_type
SKIP = {("nemotron_h", ())}


def _variants(fam: dict) -> list[dict]:
    """The class defaults, other layer counts, and each rule key set to another value."""
    out: list[dict] = [{}, {"num_hidden_layers": 7}, {"num_hidden_layers": 13}]
    for rule in (fam.get("layers") or {}, (fam.get("layers") or {}).get("else") or {}, fam.get("moe") or {}):
        for key in ("period_key", "start_key", "offset_key", "first_key"):
            if rule.get(key):
                out.append({"num_hidden_layers": 12, rule[key]: 3 if key != "offset_key" else 1})
        if rule.get("when"):
            out.append({"num_hidden_layers": 10, rule["when"]: True, "sliding_window": 64, rule.get("start_key", "x"): 4})
    return out


def _transformers_types(cls, kwargs: dict):
    cfg = cls(**kwargs)
    t = cfg.get_text_config(decoder=True)
    types = getattr(t, "layer_types", None)
    mlp = getattr(t, "mlp_layer_types", None)
    return t.num_hidden_layers, ([LEGACY.get(x, x) for x in types] if types else None), mlp


def _ours(mt: str, kwargs: dict, n: int) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    s = Section(dict(kwargs), "config.json", mt, [])
    types = layerrules.layer_types(s, n)
    return types, layerrules.moe_layers(s, n, types)


def check_rules() -> list[str]:
    warnings.filterwarnings("ignore")
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    transformers.logging.set_verbosity_error()
    bad, checked = [], 0
    for mt in sorted(configschema.families()):
        fam = configschema.family(mt)
        if not (fam.get("layers") or fam.get("moe")) or mt not in CONFIG_MAPPING:
            continue
        for kwargs in _variants(fam):
            if (mt, tuple(k for k in kwargs if k != "num_hidden_layers")) in SKIP:
                continue
            try:
                n, types, mlp = _transformers_types(CONFIG_MAPPING[mt], kwargs)
            except Exception:  # noqa: BLE001 - a variant the class itself refuses: nothing to compare
                continue
            ours, moe = _ours(mt, kwargs, n)
            checked += 1
            if types is not None and list(ours) != types:
                bad.append(f"{mt} {kwargs}: transformers {types} vs planner {list(ours)}")
            if mlp is not None and [m == "sparse" for m in mlp] != list(moe):
                bad.append(f"{mt} {kwargs}: transformers mlp {mlp} vs planner {moe}")
    for line in bad:
        print("MISMATCH", line)
    print(f"{checked} family rule cases checked against transformers {transformers.__version__}: {len(bad)} mismatches")
    return bad


def period_of(types: list[str]) -> list[str] | None:
    """The shortest prefix whose repetition gives ``types`` (None if it does not repeat within the list)."""
    for p in range(1, len(types) // 2 + 1):
        if all(types[i] == types[i % p] for i in range(len(types))):
            return types[:p]
    return None


def default_pattern(cls) -> list[str] | None:
    """The period of the class's default layer_types, kept only when it also predicts other layer counts."""
    try:
        n, types, _ = _transformers_types(cls, {})
    except Exception:  # noqa: BLE001 - a class that cannot build on its defaults
        return None
    # a uniform attention pattern follows from sliding_window / chunk keys (the generic reading); a uniform
    # recurrent one (GraniteMoeHybrid's default: every layer Mamba) is the class's to record
    if not types or (len(set(types)) == 1 and types[0] in ("full_attention", "sliding_attention", "chunked_attention")):
        return None
    pattern = period_of(types)
    if pattern is None:
        return None
    for m in (n + len(pattern) + 1, 2 * n + 3):
        try:
            _, other, _ = _transformers_types(cls, {"num_hidden_layers": m})
        except Exception:  # noqa: BLE001
            return None
        if other != [pattern[i % len(pattern)] for i in range(m)]:
            return None
    return pattern


def check_defaults(timeout_s: int = 60) -> dict[str, list]:
    """For every model_type transformers maps to a causal-LM class: the planner's count of the class-default
    config ``{"model_type": mt}`` against transformers' meta build of the same defaults. A coverage figure
    (docs/config-reading.md), not a gate: defaults computed in code the schema cannot see can differ."""
    import signal

    import torch
    import transformers
    from transformers.models.auto import modeling_auto as ma
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from planner.errors import PlannerInputError
    from planner.params import params_total
    from planner.spec import ModelSpec

    def alarm(*_):
        raise TimeoutError
    signal.signal(signal.SIGALRM, alarm)
    res: dict[str, list] = {"equal": [], "differ": [], "refused": [], "cannot_build": []}
    for mt in sorted(ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES):
        if mt not in CONFIG_MAPPING:
            continue
        try:
            ours = params_total(ModelSpec.from_hf_config({"model_type": mt}, mt))
        except PlannerInputError as e:
            res["refused"].append((mt, e.field))
            continue
        signal.alarm(timeout_s)
        try:
            with torch.device("meta"):
                m = transformers.AutoModelForCausalLM.from_config(CONFIG_MAPPING[mt]())
            theirs = sum(p.numel() for p in m.parameters())
            theirs += sum(b.numel() for n, b in m.named_buffers() if n.endswith("e_score_correction_bias"))
        except Exception as e:  # noqa: BLE001 - transformers cannot build its own defaults
            res["cannot_build"].append((mt, type(e).__name__))
            continue
        finally:
            signal.alarm(0)
        res["equal" if ours == theirs else "differ"].append((mt, ours, theirs))
    return res


if __name__ == "__main__":
    if "--defaults" in sys.argv:
        r = check_defaults()
        for mt, ours, theirs in r["differ"]:
            print(f"DIFFERS {mt}: planner {ours:,}, transformers {theirs:,}")
        print({k: len(v) for k, v in r.items()})
        sys.exit(0)
    sys.exit(1 if check_rules() else 0)
