"""The mean-value model against the simulation it stands in for (planner/serving.py evaluate, planning.simulated_percentiles).

Run: ``python benchmarks/bench_meanvalue.py`` from the repository root (~30 s on 2 cores). ``sweep``, the Trade-offs
page and the SLO search's screen use the mean-value model (one formula per plan, vectorised); ``plan`` and the
Plan page simulate the batch's clients. Over a grid of four deployments (vLLM, SGLang, TensorRT-LLM; dense and
MoE; bf16 and fp8) x batch 4-512 x prompt 128-4096 x output 32-512, every plan that fits is evaluated both
ways, and the mean-value TPOT and e2e are scored against the simulated means: median / p90 |error| and the
signed median. A measurement, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from planner import api, serving  # noqa: E402
from planner.errors import PlannerInputError  # noqa: E402
from planner.memory import Deployment  # noqa: E402
from planner.planning import simulated_percentiles  # noqa: E402

CASES = (("Llama-3.1-8B", "H100-SXM", Deployment(weights="bf16", server="vllm")),
         ("Qwen3-32B", "H200", Deployment(weights="fp8", kv_dtype="fp8", server="vllm")),
         ("Llama-3.1-70B", "H100-SXM", Deployment(weights="fp8", kv_dtype="fp8", tp=4, server="trtllm")),
         ("Qwen3-30B-A3B", "H100-SXM", Deployment(weights="bf16", server="sglang")))
BATCHES, PROMPTS, OUTPUTS = (4, 32, 128, 256, 512), (128, 1024, 4096), (32, 128, 512)


def main() -> int:
    t0 = time.perf_counter()
    err = {"tpot": [], "e2e": []}
    for model, gpu, dep in CASES:
        p = api.build_plan(model, gpu, dep)
        for b, pr, o in itertools.product(BATCHES, PROMPTS, OUTPUTS):
            m = serving.evaluate(p, b, pr, o)
            if not bool(m["fits"]):
                continue
            try:
                s = simulated_percentiles(p, b, pr, o)
            except PlannerInputError:  # too many passes to simulate: the mean-value figures stand alone
                continue
            err["tpot"].append(float(m["tpot_s"]) / s["tpot_s"] - 1)
            err["e2e"].append(float(m["e2e_latency_s"]) / s["e2e_latency_s"] - 1)
    n = len(err["tpot"])
    print(f"== mean-value against simulated, {n} plans of {len(CASES)} deployments ({time.perf_counter() - t0:.0f} s)")
    for k, e in err.items():
        e = np.array(e) * 100
        print(f"  {k:4s}  median |error| {np.median(np.abs(e)):5.1f} %   p90 {np.percentile(np.abs(e), 90):5.1f} %   "
              f"signed median {np.median(e):+5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
