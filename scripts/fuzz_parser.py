"""Fuzz the config reader: mutated copies of every bundled and corpus config through the parser, the
parameter inventory and the KV groups, in-process. A case passes when the planner answers with finite,
non-negative figures, or refuses with one PlannerInputError naming a field on one line. Anything else (a
traceback, a NaN, a negative count, a multi-line error) is a failure.

Mutations, one to three per case: a key the parser reads (or one the config has, top level or nested) set to
a hostile value or removed; the model_type swapped for another of transformers' 800 (a config read by a
class it was not written for: the configs we have not seen); layer lists of the wrong length or with
unknown names; the text_config moved, emptied or replaced.

    python scripts/fuzz_parser.py --cases 5000      # prints the counts, exit 1 on any failure

tests/test_fuzz_parser.py runs a fixed 2,400 of them in CI.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from planner import configschema, kv  # noqa: E402
from planner.errors import PlannerInputError  # noqa: E402
from planner.params import param_breakdown, params_active, params_total  # noqa: E402
from planner.spec import ModelSpec  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "hub-configs"
NAN, INF = float("nan"), float("inf")
VALUES = (0, -1, 1, 2, 3, 7, 1.5, 1e308, 10**40, 2**63, NAN, INF, -INF, "64", "abc", "", True, False, None, [], {},
          [1, 2], ["full_attention"], [0, 1, 1], {"a": 1}, "M-*E", "sliding_attention")
NESTED = ("text_config", "vision_config", "quantization_config", "linear_attn_config", "llm_config")


def seeds() -> dict[str, dict]:
    """Every bundled config and every corpus config, by name."""
    out = {}
    for p in sorted((ROOT / "profiles" / "models").glob("*/config.json")):
        out[p.parent.name] = json.loads(p.read_text())
    for p in sorted(CORPUS.glob("*.json")):
        if p.name != "index.json":
            out[p.stem] = json.loads(p.read_text())
    return out


def parser_keys() -> list[str]:
    """The keys the parser reads: canonical names, aliases, the families' rule and trait keys."""
    keys = set(configschema.ALIASES) | {a for v in configschema.ALIASES.values() for a in v}
    for fam in configschema.families().values():
        keys |= {a for v in fam.get("aliases", {}).values() for a in v} | set(fam.get("unsupported", {}))
        for rule in (fam.get("layers") or {}, (fam.get("layers") or {}).get("else") or {}, fam.get("moe") or {}):
            keys |= {v for k, v in rule.items() if (k.endswith("_key") or k in ("key", "when")) and isinstance(v, str)}
        for v in fam.get("traits", {}).values():
            if isinstance(v, str) and "_" in v:  # a trait decided by a config key (use_qk_norm)
                keys.add(v)
        for shape in fam.get("traits", {}).get("kind_shapes", {}).values():
            keys |= {h.get("key") or h.get("when") for h in shape.values()}
    keys |= {"model_type", "architectures", "head_dim", "intermediate_size", "moe_intermediate_size", "kv_lora_rank",
             "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "attention_chunk_size",
             "index_topk", "index_head_dim", "index_n_heads", "indexer_types", "num_kv_shared_layers",
             "hidden_size_per_layer_input", "mlp_layer_types", "tie_word_embeddings", "torch_dtype", "rope_scaling",
             "partial_rotary_factor", "moe_latent_size", "sliding_window_pattern", "use_sliding_window"}
    return sorted(k for k in keys if k)


def _target(cfg: dict, rng: random.Random) -> dict:
    """The config itself or one of its nested objects."""
    nested = [cfg[k] for k in NESTED if isinstance(cfg.get(k), dict)]
    return rng.choice(nested) if nested and rng.random() < 0.4 else cfg


def _value(rng: random.Random):
    r = rng.random()
    if r < 0.55:
        return copy.deepcopy(rng.choice(VALUES))
    if r < 0.75:
        return rng.choice([rng.randint(-5, 5), rng.randint(0, 1 << 20), rng.randint(-(2**70), 2**70)])
    if r < 0.85:
        return [rng.choice(["full_attention", "sliding_attention", "linear_attention", "mamba", "moe", "mlp",
                            "chunked_attention", "indexed_attention", "hybrid", "warp"]) for _ in range(rng.randint(0, 6))]
    return rng.choice(["".join(rng.choice("M-*E") for _ in range(rng.randint(1, 9))), "x" * rng.randint(0, 70)])


def mutate(cfg: dict, rng: random.Random, keys: list[str], model_types: list[str]) -> tuple[dict, str]:
    cfg = copy.deepcopy(cfg)
    labels = []
    for _ in range(rng.randint(1, 3)):
        t = _target(cfg, rng)
        op = rng.random()
        if op < 0.45:
            key = rng.choice(keys if rng.random() < 0.6 else (list(t) or keys))
            t[key] = _value(rng)
            labels.append(f"{key}={t[key]!r}"[:80])
        elif op < 0.6 and t:
            key = rng.choice(list(t))
            del t[key]
            labels.append(f"-{key}")
        elif op < 0.8:
            t["model_type"] = rng.choice(model_types)
            labels.append(f"model_type={t['model_type']}")
        elif op < 0.9:
            n = t.get("num_hidden_layers") if isinstance(t.get("num_hidden_layers"), int) else 4
            types = ["full_attention", "sliding_attention", "linear_attention", "moe", "mlp", "attention"]
            t["layer_types"] = [rng.choice(types) for _ in range(max(0, min(n, 300) + rng.choice([-1, 0, 0, 1])))]
            labels.append(f"layer_types[{len(t['layer_types'])}]")
        else:
            cfg["text_config"] = rng.choice([{}, None, [], "x", copy.deepcopy({k: v for k, v in cfg.items()
                                                                             if k != "text_config"})])
            labels.append("text_config swapped")
    return cfg, "; ".join(labels)


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x >= 0


def check(cfg: dict) -> str:
    """'' when the planner answers sanely or refuses in one line naming a field; else what went wrong."""
    try:
        spec = ModelSpec.from_hf_config(cfg, "fuzz")
        figures = [params_total(spec), params_active(spec), *param_breakdown(spec).values()]
        for engine, tp in (("paged", 1), ("transformers", 1), ("paged", 2)):
            groups = kv.layer_groups(spec, "bf16", engine, tp)
            figures += [float(kv.kv_cache_bytes(groups, 3, 4096, engine)), kv.kv_bytes_per_token(groups)]
        figures += [f for g in kv.attention_groups(spec, 1) for f in g[1:]]
    except PlannerInputError as e:
        msg = str(e)
        if "\n" in msg or not e.field or len(msg) > 600:
            return f"refusal is not one short line naming a field: {msg[:300]!r}"
        return ""
    except Exception:  # noqa: BLE001 - the fuzz's point: anything else is a finding
        return "traceback: " + traceback.format_exc(limit=6)[-1200:]
    bad = [f for f in figures if not _finite(f)]
    return f"non-finite or negative figures {bad[:5]}" if bad else ""


@dataclass
class Result:
    cases: int = 0
    answered: int = 0
    refused: int = 0
    failures: list = None


def cases(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    base = seeds()
    names = sorted(base)
    keys = parser_keys()
    model_types = sorted(configschema.schema()["model_types"]) + ["", "my_custom_lm", "llama", "qwen3_5_moe"]
    out = []
    for i in range(n):
        name = names[i % len(names)]
        cfg, label = mutate(base[name], rng, keys, model_types)
        out.append((f"{name}: {label}", cfg))
    return out


def run(n: int, seed: int = 0) -> Result:
    res = Result(failures=[])
    for label, cfg in cases(n, seed):
        problem = check(cfg)
        res.cases += 1
        if problem:
            res.failures.append((label, problem))
        else:
            try:
                ModelSpec.from_hf_config(cfg, "fuzz")
                res.answered += 1
            except PlannerInputError:
                res.refused += 1
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    res = run(args.cases, args.seed)
    for label, problem in res.failures[:20]:
        print("FAIL", label, "\n   ", problem)
    print(f"{res.cases} mutated configs: {res.answered} answered, {res.refused} refused by name, "
          f"{len(res.failures)} failures")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
