"""Write profiles/config_schema.json from the installed transformers' configuration classes.

Offline and slow (imports transformers); the planner only reads the file it writes. Per model_type:
the class name, its ``attribute_map``, the defaults of its fields (JSON values only; token ids, dropout
and training knobs left out), its sub-configs (which class or default model_type reads ``text_config``,
``vision_config``..., with the defaults used when the key is absent), the sub-config ``get_text_config``
returns (``text_key``) and the causal-LM / image-text-to-text classes transformers maps it to.

Where a class computes a non-uniform default ``layer_types`` whose period also predicts other layer counts,
that period is ``layer_pattern`` (the fallback for families without a rule). It then checks
profiles/model_families.json against transformers (scripts/check_families.py): every layer-pattern and
MoE-placement rule gives the ``layer_types`` / ``mlp_layer_types`` transformers' own config object computes,
on the class defaults and on varied keys (``--check`` only checks; run it after editing the families file).

    python scripts/gen_config_schema.py            # write the schema, then check the rules
    python scripts/gen_config_schema.py --check    # check only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "profiles" / "config_schema.json"
# fields no capacity question reads: token ids, dropout, initialisation, losses, generation knobs
SKIP = re.compile(
    r"token_id|token_index|dropout|initializer|_eps$|epsilon|_act$|activation|^output_|return_dict|^use_cache$|"
    r"label|problem_type|torchscript|^tie_encoder|chunk_size_feed|_name_or_path|^architectures$|^dtype$|"
    r"^transformers_version|^task|prefix|^finetuning|tokenizer|^pruned|^bad_words|^num_beams|^temperature|"
    r"^top_p$|^max_length$|^min_length$|^do_sample|^early_stopping|^typical_p|^repetition|^length_penalty|"
    r"^no_repeat|^diversity|^num_return|^forced|^remove_invalid|^exponential|^suppress|^begin_suppress|"
    r"^decoder_start|^sep_token|^tf_legacy|_std$|^router_aux|z_loss|aux_loss|jitter|^use_kernel|"
    r"use_mamba_kernels|_loss_coef|_cost$|_coefficient$|^mask_time|^mask_feature|^ctc_|^layerdrop|_layerdrop$|"
    r"^drop_path|^attn_implementation|^use_return_dict|^is_encoder_decoder$|^is_decoder$|^add_cross_attention$")
MAX_TEXT = 600  # a default whose JSON is longer is not a size the planner reads


def _jsonable(v):
    try:
        text = json.dumps(v, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return len(text) <= MAX_TEXT


def _defaults(cls) -> dict:
    out = {}
    if not dataclasses.is_dataclass(cls):
        return out
    for f in dataclasses.fields(cls):
        if SKIP.search(f.name):
            continue
        v = f.default
        if v is dataclasses.MISSING:
            if f.default_factory is dataclasses.MISSING:
                continue
            try:
                v = f.default_factory()
            except Exception:  # noqa: BLE001 - a factory that needs arguments: no default to record
                continue
        if isinstance(v, tuple):
            v = list(v)
        if _jsonable(v):
            out[f.name] = v
    return out


def _sub_configs(cls, mapping) -> dict:
    out = {}
    for key, spec in (getattr(cls, "sub_configs_defaults", None) or {}).items():
        concrete = spec.config_class.__name__ != "AutoConfig"
        kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in (spec.init_kwargs or {}).items()}
        out[key] = {
            "model_type": spec.config_class.model_type if concrete else None,
            "default_model_type": getattr(spec, "model_type", None) or None,
            "defaults": {k: v for k, v in kwargs.items() if _jsonable(v)},
            "optional": bool(getattr(spec, "optional", False)),
        }
    return out


def _text_key(cls) -> str | None:
    names = [k for k in ("decoder", "generator", "text_config") if k in (getattr(cls, "sub_configs", None) or {})]
    return names[0] if len(names) == 1 else None


def build() -> dict:
    import transformers
    from transformers.models.auto import modeling_auto as ma
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from scripts.check_families import default_pattern

    causal, itt = ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, ma.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    types = {}
    for mt in sorted(CONFIG_MAPPING.keys()):
        try:
            cls = CONFIG_MAPPING[mt]
        except Exception:  # noqa: BLE001 - a mapping entry whose module does not import: skipped
            continue
        pattern = default_pattern(cls)
        types[mt] = {
            "class": cls.__name__,
            "attribute_map": dict(getattr(cls, "attribute_map", {}) or {}),
            "defaults": _defaults(cls),
            "sub_configs": _sub_configs(cls, CONFIG_MAPPING),
            "text_key": _text_key(cls),
            "causal_lm": causal.get(mt),
            "image_text_to_text": itt.get(mt),
        }
        if pattern:
            types[mt]["layer_pattern"] = pattern
    return {"transformers_version": transformers.__version__, "generated_by": "scripts/gen_config_schema.py",
            "model_types": types}


def write(data: dict) -> None:
    """One model_type per line: diffs stay readable."""
    lines = [f'  {json.dumps(mt)}: {json.dumps(e, sort_keys=True, separators=(",", ":"))}'
             for mt, e in data["model_types"].items()]
    head = {k: v for k, v in data.items() if k != "model_types"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "model_types": {\n' + ",\n".join(lines) + "\n }\n}\n"
    OUT.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check the families' rules against transformers")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if not args.check:
        data = build()
        write(data)
        print(f"wrote {OUT.relative_to(ROOT)}: {len(data['model_types'])} model types, "
              f"transformers {data['transformers_version']}")
    from scripts.check_families import check_rules
    bad = check_rules()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
