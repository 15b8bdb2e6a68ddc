"""The on-GPU validation run: one command, a fixed matrix, CSV and environment files as it goes.

    make gpu-validate                                   # python3 scripts/gpu_validate.py
    python3 scripts/gpu_validate.py --check             # what this machine has; builds nothing
    python3 scripts/gpu_validate.py --device cpu --models DIR,DIR --batch 1,2 --prompt 16,32 --output 4

Each model of MODELS is built from its bundled config with random weights (exact for memory and
speed) and measured by the profiler (``profiler/run.py``, the code of ``python -m planner profile``):
per batch x prompt one prefill and ``warmup + output`` decode steps, CUDA-event timed; torch's
allocated and reserved peaks, NVML's used memory and the KV cache tensors' bytes.

Order: every model's cheapest point first, then each model's other points, cheapest first, so that a
run cut off (by its budget or by hand) still holds every model. A point whose estimated end passes
``--budget-s`` is not started; every finished point is already on disk, and a rerun with the same
``--out`` measures only what is missing. An OOM, a model that cannot be built and a layer kind whose
kernels are missing are rows with a reason, never a traceback.

Needs (nothing is installed, the GPU machine has no network): Python >= 3.11, torch, transformers,
numpy and pandas (the planner core's tables: ``planner/params.py``, ``planner/formats.py``).
Optional: nvidia-ml-py (NVML columns; NaN without), flash-linear-attention (the hybrid model).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # planner/ and profiler/ from this checkout, wherever it is run from

# One model per layer kind the planner must get right (profiles/models/README.md).
MODELS = ("Llama-3.1-8B", "gemma-2-9b", "Qwen3-30B-A3B", "DeepSeek-V2-Lite", "Qwen3-Next-80B-A3B-Instruct")
# Layers kept where the whole model does not fit one GPU in bf16, a whole number of layer-pattern
# periods: Qwen3-Next is 80B params x 2 bytes = 149 GiB > an H200's 139 GiB; 8 of its 48 layers are
# 2 x (3 Gated DeltaNet + 1 full attention), every layer kind, ~13.5B params (25 GiB).
DEPTH = {"Qwen3-Next-80B-A3B-Instruct": 8}
# Layer kinds that are fast only with an optional kernel package: model_type -> (module, function,
# distribution). Without it transformers runs a reference PyTorch loop ("correct but much slower",
# transformers/integrations/hub_kernels.py), whose timing says nothing about the model.
KERNELS = {"qwen3_next": ("fla.ops.gated_delta_rule", "chunk_gated_delta_rule", "flash-linear-attention")}
REQUIRED = {"torch": "the models", "transformers": "the models", "numpy": "the planner core",
            "pandas": "the planner core's tables (planner/params.py, planner/formats.py)"}
OPTIONAL = {"pynvml": "nvidia-ml-py: NVML used memory, clocks, driver (NaN without)"}
GIB = 2**30


# ---- before anything heavy is imported ---------------------------------------------------------------
def missing_requirements() -> list[str]:
    """One line per thing this Python lacks that the run needs."""
    out = [f"Python >= 3.11 (this is {sys.version.split()[0]}): planner/ uses datetime.UTC"] \
        if sys.version_info < (3, 11) else []
    return out + [f"{m}: {why}" for m, why in REQUIRED.items() if importlib.util.find_spec(m) is None]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu: the CI rehearsal")
    ap.add_argument("--out", default=None, help="measurement folder (default "
                    "profiles/measurements/<gpu-id>/gpu-validate-<date>/); a rerun into it resumes")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="no point starts that would end later than this many seconds after the start")
    ap.add_argument("--models", default=",".join(MODELS), help="bundled names or config folders, comma-separated")
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--prompt", default="512,4096", help="prompt lengths (tokens)")
    ap.add_argument("--output", type=int, default=32, help="timed decode steps per point")
    ap.add_argument("--warmup", type=int, default=3, help="untimed decode steps (and one untimed prefill)")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"))
    ap.add_argument("--check", action="store_true", help="report what this machine has for the run, build nothing")
    return ap.parse_args(argv)


def int_list(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise ValueError(f"{text!r}: give positive whole numbers, e.g. 1,8,32")
    return values


# ---- what can run here -------------------------------------------------------------------------------
def kernel_gap(model_type: str, device: str) -> str | None:
    """Why the layer kind of ``model_type`` cannot run at speed here, or None."""
    need = KERNELS.get(model_type)
    if need is None:
        return None
    module, func, dist = need
    if not device.startswith("cuda"):
        return f"{dist} ({module}.{func}) is a CUDA kernel; {model_type} is measured on a GPU only"
    try:
        found = hasattr(importlib.import_module(module), func)
    except Exception as e:  # noqa: BLE001 - missing, or present but broken (a triton mismatch)
        return f"{dist} is not importable ({module}: {type(e).__name__}: {str(e)[:120]})"
    return None if found else f"{dist} has no {module}.{func}"


def fit_gap(weights_bytes: float, memory_bytes: float | None, dtype: str) -> str | None:
    """Why the weights alone do not fit the device, or None (None on the CPU: host memory)."""
    if memory_bytes is None or weights_bytes < 0.9 * memory_bytes:
        return None
    return (f"weights {weights_bytes / GIB:.1f} GiB in {dtype} do not fit {memory_bytes / GIB:.1f} GiB "
            f"with room to run: add the model to DEPTH in scripts/gpu_validate.py with fewer layers")


def truncated(cfg: dict, layers: int) -> dict:
    """``cfg`` with its first ``layers`` layers (an explicit ``layer_types`` list is cut to match)."""
    out = {**cfg, "num_hidden_layers": layers}
    if isinstance(cfg.get("layer_types"), list):
        out["layer_types"] = cfg["layer_types"][:layers]
    return out


class Model:
    """One entry of the matrix: where its config is, its name in the CSVs, why it cannot run (if so)."""

    def __init__(self, prun, name: str, tmp: Path, device: str, dtype: str, memory_bytes: float | None):
        self.source = name
        cfg, self.label, _ = prun.read_config(name)
        if name in DEPTH:
            self.label = f"{self.label}-{DEPTH[name]}L"
            folder = tmp / self.label
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(truncated(cfg, DEPTH[name]), indent=2))
            self.source, cfg = str(folder), truncated(cfg, DEPTH[name])
        spec = prun.ModelSpec.from_hf_config(cfg, self.label)
        self.weights_bytes = prun.predicted_param_bytes(spec, dtype)
        self.reason = kernel_gap(spec.model_type, device) or fit_gap(self.weights_bytes, memory_bytes, dtype)


# ---- the time budget ---------------------------------------------------------------------------------
def point_estimate_s(tm, last: dict | None, batch: int, prompt: int, warmup: int, steps: int) -> float:
    """Seconds one point takes: the planner's roofline prefill and decode step for it, each scaled
    by how much slower than its roofline the model's last measured point ran (transformers' per-kernel
    launch cost, which the roofline lacks), at least 1x. Two prefills (one untimed), warmup + steps."""
    def times(b, p):
        return tm.prefill(b, p)["time_s"], tm.decode_step(b, p + warmup + steps / 2)["time_s"]

    pre_s, dec_s = times(batch, prompt)
    if last:
        last_pre_s, last_dec_s = times(int(last["batch"]), int(last["prompt"]))
        pre_s *= max(1.0, float(last["prefill_s"]) / last_pre_s)
        dec_s *= max(1.0, float(last["decode_step_median_s"]) / last_dec_s)
    return (2 if warmup else 1) * pre_s + (warmup + steps) * dec_s


class Budget:
    """Starts a point only if its estimated end is within ``budget_s`` of the run's start."""

    def __init__(self, budget_s: float, warmup: int, steps: int, t0: float):
        self.budget_s, self.warmup, self.steps, self.t0 = budget_s, warmup, steps, t0
        self.last: dict[str, dict] = {}  # model -> its last measured (ok) row
        self.not_started: dict[str, None] = {}  # "model batch x prompt", in matrix order

    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def admit_for(self, model: str):
        def admit(batch: int, prompt: int, tm) -> bool:
            est_s = point_estimate_s(tm, self.last.get(model), batch, prompt, self.warmup, self.steps)
            key = f"{model} {batch} x {prompt}"
            ok = self.elapsed_s() + est_s <= self.budget_s
            if ok:
                self.not_started.pop(key, None)
            else:
                self.not_started[key] = None
            return ok
        return admit


# ---- output ------------------------------------------------------------------------------------------
def _size(x) -> str:
    """Bytes for a person: GiB, MiB below 1 GiB (the CPU rehearsal's tiny models); n/a for NaN."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if v != v:
        return "n/a"
    return f"{v / GIB:.2f} GiB" if v >= GIB else f"{v / 2**20:.2f} MiB"


def row_line(row: dict, elapsed_s: float) -> str:
    """The one line printed per finished point."""
    head = f"[{elapsed_s:6.1f} s] {row['model']:<32} batch {row['batch']:>3} prompt {row['prompt']:>5}"
    if row["status"] != "ok":
        return f"{head}  {row['status']}: {row['error']}"
    return (f"{head}  ok  peak {_size(row['peak_allocated_bytes'])} (reserved {_size(row['peak_reserved_bytes'])})"
            f"  kv {_size(row['kv_bytes'])}  prefill {row['prefill_s'] * 1e3:.1f} ms"
            f"  decode {row['decode_step_median_s'] * 1e3:.2f} ms")


class Ledger:
    """``gpu-validate.json``: the command, the environment, every point's status, what was not
    started and why a model was skipped; rewritten after every point so a cut-off run has it."""

    def __init__(self, path: Path, budget: Budget, head: dict):
        old = json.loads(path.read_text()) if path.is_file() else {}  # a resumed run keeps its points
        self.path, self.budget = path, budget
        self.data = {**head, "commands": [*old.get("commands", []), head["command"]], "errors": {},
                     "points": old.get("points", {}), "skipped_models": {}}
        self.counts: dict[str, int] = {}

    def report(self, row: dict) -> None:
        if row["status"] != "skipped":  # a skipped model has had its one line already
            print(row_line(row, self.budget.elapsed_s()), flush=True)
        if row["status"] == "ok":
            self.budget.last[row["model"]] = row
        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        self.data["points"][f"{row['model']} {row['batch']} x {row['prompt']}"] = row["status"]
        self.write()

    def write(self, finished: bool = False) -> None:
        self.data.update(elapsed_s=round(self.budget.elapsed_s(), 1), finished=finished,
                         not_started=list(self.budget.not_started))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)


# ---- the run -----------------------------------------------------------------------------------------
def environment(prun, dev) -> dict:
    mods = {m: _version(m) for m in (*REQUIRED, *OPTIONAL, "fla", "triton")}
    return {**dev.env(), "modules": mods}


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return str(getattr(importlib.import_module(module), "__version__", "present"))
    except Exception as e:  # noqa: BLE001 - present but broken: say so
        return f"broken: {type(e).__name__}"


def default_out(prun, dev) -> Path:
    day = datetime.now(timezone.utc).strftime("%Y%m%d")  # noqa: UP017 - readable on Python < 3.11 too
    return prun.profiles.ROOT / "measurements" / prun._safe(dev.gpu_id()) / f"gpu-validate-{day}"


def device_memory_bytes(prun, dev) -> float | None:
    return float(prun.torch.cuda.get_device_properties(0).total_memory) if dev.cuda else None


def request(prun, a, model: Model, batches, prompts, out: Path, budget: Budget, ledger: Ledger):
    return prun.Request(model=model.source, device=a.device, dtype=a.dtype, batches=batches, prompts=prompts,
                        output=a.output, warmup=a.warmup, out_dir=out, progress=False,
                        command="python3 scripts/gpu_validate.py " + shlex.join(a.argv),
                        admit=budget.admit_for(model.label), report=ledger.report)


def leg(prun, dev, req, label: str, ledger: Ledger) -> None:
    """One ``profiler.run`` call; anything it raises is reported in one line, not a traceback."""
    try:
        prun.run(req)
    except Exception as e:  # noqa: BLE001 - the run goes on to the next model
        msg = f"{type(e).__name__}: {str(e)[:300]}"
        print(f"[{ledger.budget.elapsed_s():6.1f} s] {label}: not measured: {msg}", flush=True)
        ledger.data["errors"][label] = msg
    finally:
        dev.free()


def resolve(prun, a, tmp: Path, memory_bytes) -> tuple[list[Model], dict[str, str]]:
    """The models of ``--models``, and {name: error} for those whose config cannot be read."""
    models, errors = [], {}
    for name in [m.strip() for m in a.models.split(",") if m.strip()]:
        try:
            models.append(Model(prun, name, tmp, a.device, a.dtype, memory_bytes))
        except Exception as e:  # noqa: BLE001 - an unknown name or a bad config: say which and go on
            errors[name] = f"{type(e).__name__}: {str(e)[:300]}"
            print(f"{name}: not measured: {errors[name]}", flush=True)
    return models, errors


def skip(prun, a, m: Model, reason: str, out: Path, budget: Budget, ledger: Ledger) -> None:
    """Every point of ``m`` not yet measured becomes a ``skipped`` row with ``reason``."""
    print(f"{m.label}: skipped: {reason}", flush=True)
    ledger.data["skipped_models"][m.label] = reason
    req = request(prun, a, m, int_list(a.batch), int_list(a.prompt), out, budget, ledger)
    prun.record_unmeasured(req, "skipped", reason)


def measure(prun, dev, a, models: list[Model], out: Path, budget: Budget, ledger: Ledger) -> None:
    """Skipped models as rows; every model's cheapest point; then the other points of each model
    whose cheapest point did not fail (if it did, they are skipped rows saying so)."""
    batches, prompts = int_list(a.batch), int_list(a.prompt)
    for m in [m for m in models if m.reason]:
        skip(prun, a, m, m.reason, out, budget, ledger)
    runnable = [m for m in models if not m.reason]
    first = ((min(batches),), (min(prompts),))
    for m in runnable:
        leg(prun, dev, request(prun, a, m, *first, out, budget, ledger), m.label, ledger)
    for m in runnable:
        status = ledger.data["points"].get(f"{m.label} {first[0][0]} x {first[1][0]}")
        if status in (None, "ok"):  # None: not started (budget) or measured by an earlier run
            leg(prun, dev, request(prun, a, m, batches, prompts, out, budget, ledger), m.label, ledger)
        else:
            skip(prun, a, m, f"not attempted: its batch {first[0][0]} x prompt {first[1][0]} point "
                             f"ended {status}", out, budget, ledger)


def check(prun, dev, models: list[Model], memory_bytes) -> int:
    """``--check``: versions, kernels, memory and what each model would do; builds nothing."""
    env = environment(prun, dev)
    print(json.dumps({k: env[k] for k in ("gpu_name", "gpu", "torch", "transformers", "modules")}, indent=2))
    print(f"device memory: {_size(memory_bytes)}")
    for m in models:
        print(f"{m.label:<32} weights {_size(m.weights_bytes):>10}  {'skipped: ' + m.reason if m.reason else 'runs'}")
    return 0


def closing(ledger: Ledger, budget: Budget, out: Path, rel_out: str) -> None:
    done = ", ".join(f"{n} {s}" for s, n in sorted(ledger.counts.items())) or "no points"
    print(f"\nfinished in {budget.elapsed_s():.0f} s: {done}; files in {rel_out}", flush=True)
    if budget.not_started:
        print(f"time budget of {budget.budget_s:.0f} s spent: {len(budget.not_started)} points not started "
              f"({', '.join(budget.not_started)}); rerun with the same --out and a larger --budget-s "
              "to measure only those", flush=True)
    print("next: commit the folder under profiles/measurements/, then `python -m planner calibrate --write` "
          "and `python -m planner validate` (docs/profiling.md)", flush=True)
    ledger.write(finished=True)


def main(argv: list[str] | None = None) -> int:
    t0 = time.monotonic()
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    a.argv = argv
    missing = missing_requirements()
    if missing:
        print("gpu-validate cannot run with this Python; it needs:\n  " + "\n  ".join(missing) +
              "\nnothing is installed by this script: use a Python that has them "
              "(make gpu-validate GPU_PY=path/to/python)", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network: never wait on the Hub for a kernel
    prun = importlib.import_module("profiler.run")
    try:
        int_list(a.batch), int_list(a.prompt)
    except ValueError as e:
        print(f"gpu-validate: --batch/--prompt {e}", file=sys.stderr)
        return 2
    if a.device.startswith("cuda") and not prun.torch.cuda.is_available():
        print("gpu-validate: CUDA is not available here (torch " + prun.torch.__version__ +
              "); use --device cpu for the rehearsal", file=sys.stderr)
        return 2
    return run_all(prun, a, t0)


def run_all(prun, a, t0: float) -> int:
    dev = prun.Device(a.device)
    memory_bytes = device_memory_bytes(prun, dev)
    out = Path(a.out) if a.out else default_out(prun, dev)
    budget = Budget(a.budget_s, a.warmup, a.output, t0)
    head = {"command": "python3 scripts/gpu_validate.py " + shlex.join(a.argv), "budget_s": a.budget_s,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # noqa: UP017
    with tempfile.TemporaryDirectory() as tmp:
        print(f"gpu-validate on {dev.gpu_name()}: torch {prun.torch.__version__}, transformers "
              f"{prun.transformers.__version__}; budget {a.budget_s:.0f} s", flush=True)
        models, errors = resolve(prun, a, Path(tmp), memory_bytes)
        if a.check:
            return check(prun, dev, models, memory_bytes)
        out.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(out / "gpu-validate.json", budget, {**head, "environment": environment(prun, dev)})
        ledger.data["errors"].update(errors)
        ledger.write()
        measure(prun, dev, a, models, out, budget, ledger)
    rel = os.path.relpath(out, ROOT) if out.is_relative_to(ROOT) else str(out)
    closing(ledger, budget, out, rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
