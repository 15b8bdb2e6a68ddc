"""How far the measured operator tables sit above the roofline on MoE plans: the factor a roofline MoE plan takes.

Run: ``python scripts/moe_realism.py`` from the repository root (~1 min); ``--write`` saves the medians to
profiles/kernels.json ``moe_roofline_realism`` (planner/timing.py reads them).

For every MoE model, bundled GPU with measured tables and TP the tables cover (vLLM's plan, the checkpoint's
own weights), one forward pass is timed twice: on the tables' kernels alone (planner/opstep.py ``step_s``:
GEMMs, experts, router, attention, all-reduces, LM head; no fitted engine cost) and on the roofline's kernels
alone (max(compute, memory) + its all-reduce estimate). Their ratio, at decode batches of 1-128 sequences
(1,024 cached tokens each) and prefill chunks of 512-8,192 tokens, is what the roofline misses of MoE
kernels at small token counts (routing, expert alignment, per-expert launches, partial expert tiles): a
dense model's passes sit within 0.85-1.4x of its roofline, an MoE model's 1.0-4.6x. A plan the tables do
not cover (an MoE on a GPU without tables, sparse or chunked attention, MXFP4 experts on an A100) multiplies
its roofline kernels by the median ratio at its pass's size (planner/timing.py ``TimingModel.realism``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from planner import api, profiles  # noqa: E402
from planner.errors import PlannerInputError  # noqa: E402
from planner.memory import Deployment  # noqa: E402

MODELS = ("Qwen3-30B-A3B", "gpt-oss-20b", "gpt-oss-120b", "DeepSeek-R1", "Qwen3-235B-A22B-FP8", "Mixtral-8x7B-v0.1",
          "GLM-4.5-Air", "DeepSeek-V2-Lite")
GPUS = ("H100-SXM", "H200", "A100-SXM-80GB", "B200")
TPS = (1, 2, 4, 8)
DECODE = (1, 8, 32, 128)
PREFILL = (512, 2048, 8192)


def ratios() -> pd.DataFrame:
    rows = []
    for model in MODELS:
        spec = profiles.load_model(model)
        for gpu in GPUS:
            for tp in TPS:
                try:
                    p = api.build_plan(model, gpu, Deployment(weights=api.default_weights(spec), tp=tp, server="vllm"))
                except PlannerInputError:
                    continue
                if p.timing.ops is None or p.memory.kv_budget_bytes() <= 0:
                    continue
                t = dataclasses.replace(p.timing, ops=None, realism=None)
                rec = {"model": model, "gpu": gpu, "tp": tp}
                for b in DECODE:
                    rec[f"decode_{b}"] = float(p.timing.ops.step_s(b, 1024)) / t.roofline_kernels_s(b, 1024)
                for n in PREFILL:
                    rec[f"prefill_{n}"] = float(p.timing.ops.step_s(0, 0, n, n)) / t.roofline_kernels_s(0, 0, n, n)
                rows.append(rec)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="save the medians to profiles/kernels.json")
    args = ap.parse_args(argv)
    d = ratios()
    pd.set_option("display.width", 200)
    print(d.round(2).to_string(index=False))
    med = d.drop(columns=["model", "gpu", "tp"]).median()
    out = {"decode_batch": list(DECODE), "decode": [round(float(med[f"decode_{b}"]), 3) for b in DECODE],
           "prefill_tokens": list(PREFILL), "prefill": [round(float(med[f"prefill_{n}"]), 3) for n in PREFILL],
           "plans": int(len(d)),
           "source": (f"median over {len(d)} MoE plans ({', '.join(MODELS)} on {', '.join(GPUS)}, TP 1-8 where the "
                      "measured tables cover them) of the tables' kernel time over the roofline's for one pass: "
                      "scripts/moe_realism.py")}
    print(json.dumps(out, indent=1))
    if args.write:
        # one line for the entry, the file's own layout kept (its other entries are one line each too)
        path = ROOT / "profiles" / "kernels.json"
        text = path.read_text(encoding="utf-8")
        line = f'  "moe_roofline_realism": {json.dumps(out, ensure_ascii=False)}'
        if '"moe_roofline_realism"' in text:
            text = re.sub(r'  "moe_roofline_realism": .*', lambda _: line, text)
        else:
            text = text.rstrip().removesuffix("}").rstrip() + ",\n" + line + "\n}\n"
        json.loads(text)  # still JSON
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} moe_roofline_realism")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
