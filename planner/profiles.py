"""The one module that reads files: bundled model configs, GPU specs, weight formats, runtime
constants and calibrations under ``profiles/``. Everything else takes specs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from .configread import MAX_CONFIG_BYTES, loads
from .errors import PlannerInputError
from .formats import FormatTable
from .gpus import GpuSpec
from .runtime import Runtime
from .spec import ModelSpec

ROOT = Path(os.environ.get("KV_PLANNER_PROFILES", Path(__file__).resolve().parent.parent / "profiles"))


def read_json(path: Path, what: str, max_bytes: int = MAX_CONFIG_BYTES):
    """A JSON file through configread.loads (size, encoding, depth, syntax): a PlannerInputError
    naming ``what`` and the path, never a traceback."""
    try:
        if path.is_dir():
            raise PlannerInputError(what, f"{path} is a folder without a config.json", "point at the config.json")
        size = path.stat().st_size
        if size > max_bytes:
            raise PlannerInputError(what, f"{path} is {size:,} bytes, too large for a config (limit {max_bytes:,})",
                                    "point at the model's config.json")
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlannerInputError(what, f"{path} does not exist") from None
    except OSError as e:
        raise PlannerInputError(what, f"{path} cannot be read ({e.strerror or e})", "check the path") from None
    try:
        return loads(data, what, max_bytes)
    except PlannerInputError as e:
        raise PlannerInputError(what, f"{path} {e.problem}", e.fix) from None


_read_json = read_json  # the old private name (tests use it)
_HASH = re.compile(r"[0-9a-f]{40}")  # a Hugging Face cache snapshot folder is a commit hash
_UNSAFE = re.compile(r"[^A-Za-z0-9._+ -]+")


def clean_name(text: str, limit: int = 80) -> str:
    """A model name safe to show anywhere: letters, digits, ``. _ + - space``; the rest becomes '-'."""
    return _UNSAFE.sub("-", str(text)).strip(" -")[:limit].strip(" -")


def model_name(path: Path | str, cfg: dict | None = None, on_disk: bool = True) -> str:
    """The name a config file gives its model: ``name.json`` its stem; ``config.json`` its folder,
    or the last part of the config's ``_name_or_path`` when the folder is a snapshot hash or there is
    none (an upload: ``on_disk=False``)."""
    path = Path(path)
    if path.name != "config.json":
        return clean_name(path.stem) or "config"
    folder = path.resolve().parent.name if on_disk else ""
    given = (cfg or {}).get("_name_or_path")
    from_cfg = clean_name(given.rstrip("/").rsplit("/", 1)[-1]) if isinstance(given, str) else ""
    if folder and not _HASH.fullmatch(folder):
        return clean_name(folder) or from_cfg or "config"
    return from_cfg or clean_name(folder) or "config"


def unique_names(specs: list[ModelSpec]) -> list[ModelSpec]:
    """The specs with repeated names numbered (``name``, ``name #2``...): one model, one name per request."""
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        seen[s.name] = seen.get(s.name, 0) + 1
        out.append(s if seen[s.name] == 1 else replace(s, name=f"{s.name} #{seen[s.name]}"))
    return out


@lru_cache(maxsize=1)
def model_names() -> tuple[str, ...]:
    d = ROOT / "models"
    return tuple(sorted(p.name for p in d.iterdir() if (p / "config.json").is_file())) if d.is_dir() else ()


def model_source(name: str) -> dict:
    p = ROOT / "models" / name / "source.json"
    return read_json(p, "source.json") if p.is_file() else {}


@lru_cache(maxsize=1)
def bundled_repos() -> dict[str, str]:
    """{Hub id of each bundled config's source (lower case): the bundled name}."""
    out = {}
    for n in model_names():
        repo = model_source(n).get("repo")
        if isinstance(repo, str):
            out[repo.lower()] = n
    return out


def _match(name: str, names: tuple[str, ...]) -> str | None:
    """A bundled name, case-insensitive. ``org/name`` is the bundled copy when it is that copy's source
    repo; another org's id of the same name is a Hub id (a fine-tune is not its base model)."""
    from .hub import parse_id

    if "/" in name and (found := bundled_repos().get(name.lower())):
        return found
    if parse_id(name):
        return None
    low = {n.lower(): n for n in names}
    return low.get(name.lower().split("/")[-1])


def with_quant_file(cfg, folder: Path):
    """``cfg`` with the ModelOpt quantization a checkpoint keeps beside its config.json (``hf_quant_config.json``:
    nvidia's NVFP4 / FP8 exports, whose config.json has no quantization_config; vLLM's ModelConfig reads that
    file for them) as its quantization_config. Without it such a checkpoint would be planned as 16-bit weights."""
    q = folder / "hf_quant_config.json"
    if isinstance(cfg, dict) and "quantization_config" not in cfg and q.is_file():
        hq = read_json(q, "hf_quant_config.json")
        if not isinstance(hq, dict):
            raise PlannerInputError("hf_quant_config.json", "must be a JSON object", "use the checkpoint's own file")
        cfg = {**cfg, "quantization_config": {"quant_method": "modelopt", **hq, "_file": "hf_quant_config.json"}}
    return cfg


def model_config(name_or_path: str) -> dict:
    """The raw config.json of a bundled model or a path (what ``inspect --verify`` hands transformers)."""
    p = Path(name_or_path).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        p = p / "config.json"
    if not p.is_file():
        found = _match(name_or_path, model_names())
        if found is None:
            raise PlannerInputError("model", f"{name_or_path!r} is neither a bundled model nor a config.json path",
                                    "run `python -m planner list` for the bundled names, or give a path")
        p = ROOT / "models" / found / "config.json"
    cfg = read_json(p, "config.json")
    if not isinstance(cfg, dict):
        raise PlannerInputError("config.json", "must be a JSON object", "point at the model's config.json")
    return cfg


@lru_cache(maxsize=256)
def load_model(name_or_path: str) -> ModelSpec:
    """A bundled model by name (case-insensitive, or the Hub id of its source), a path to a
    config.json or to a folder holding one, or a Hugging Face Hub id (``org/name[@revision]``: from the
    local Hugging Face cache, or fetched when online; planner/hub.py)."""
    p = Path(name_or_path).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        p = p / "config.json"
    if p.is_file() or p.is_dir():
        cfg = read_json(p, "config.json")
        name = model_name(p, cfg if isinstance(cfg, dict) else None)
        return ModelSpec.from_hf_config(with_quant_file(cfg, p.parent), name=name)
    found = _match(name_or_path, model_names())
    if found is None:
        from . import hub

        if hub.parse_id(name_or_path):
            return hub.load_spec(name_or_path)
        raise PlannerInputError("model", f"{name_or_path!r} is neither a bundled model, a config.json path nor "
                                "a Hugging Face Hub id", "run `python -m planner list` for the bundled and cached "
                                "names, or give a path or an org/name id")
    return ModelSpec.from_hf_config(read_json(ROOT / "models" / found / "config.json", "config.json"), name=found)


@lru_cache(maxsize=1)
def gpus() -> dict[str, GpuSpec]:
    """The bundled GPUs (profiles/gpus/*.json) by id; user-defined ones are in ``user_gpus()``."""
    out = {}
    for p in sorted((ROOT / "gpus").glob("*.json")):
        spec = GpuSpec.from_profile(read_json(p, f"profiles/gpus/{p.name}"))
        out[spec.id] = spec
    return out


_USER_GPUS: dict[str, GpuSpec] = {}
MAX_USER_GPUS = 256  # a dashboard session adds one per form submit; the oldest go first


def register_gpu(spec: GpuSpec) -> str:
    """Make a user-defined GPU known to ``gpu()`` by its id (refused when a bundled GPU has that id)."""
    if spec.id.lower() in (g.lower() for g in gpus()):
        raise PlannerInputError("gpu id", f"{spec.id!r} is a bundled GPU", "give your GPU another id")
    _USER_GPUS.pop(spec.id, None)
    _USER_GPUS[spec.id] = spec
    while len(_USER_GPUS) > MAX_USER_GPUS:
        _USER_GPUS.pop(next(iter(_USER_GPUS)))
    return spec.id


def user_gpus() -> dict[str, GpuSpec]:
    return dict(_USER_GPUS)


def load_gpu_file(path: str | Path) -> GpuSpec:
    """A user's GPU profile (the schema of profiles/gpus/*.json), marked user-defined; every bad field
    is a PlannerInputError naming the file and the field."""
    p = Path(path).expanduser()
    return GpuSpec.from_profile(read_json(p, "gpu-file", 200_000), where=f"gpu-file {p.name}", user_defined=True)


def gpu(name: str | GpuSpec) -> GpuSpec:
    """A GPU by id or NVML name: a user-defined one registered under that id, else a bundled one."""
    if isinstance(name, GpuSpec):
        return name
    if name in _USER_GPUS:
        return _USER_GPUS[name]
    table = gpus()
    key = str(name).lower().replace("_", "-").replace(" ", "-")
    for gid, g in table.items():
        if gid.lower() == key or key in (n.lower().replace(" ", "-") for n in g.nvml_names):
            return g
    known = [*table, *_USER_GPUS]
    raise PlannerInputError("gpu", f"unknown GPU {name!r}",
                            f"choose one of {', '.join(known)}, or define one with --gpu-file or --gpu-memory-gib")


def gpu_for_nvml_name(nvml_name: str) -> GpuSpec | None:
    for g in gpus().values():
        if nvml_name in g.nvml_names:
            return g
    return None


@lru_cache(maxsize=1)
def formats() -> FormatTable:
    return FormatTable.from_dict(read_json(ROOT / "weight_formats.json", "weight_formats.json"))


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return Runtime.from_profile(read_json(ROOT / "runtime.json", "runtime.json"))


def read_for_update(path: Path, default):
    """A data file under profiles/ as it stands, for a writer that merges into it (calibrate, fit_e2e,
    logcheck), or ``default`` when it does not exist yet."""
    return json.loads(path.read_text()) if path.is_file() else default


def calibration_path() -> Path:
    return ROOT / "calibration.json"


def load_calibrations() -> dict:
    """{gpu_id: {engine: {memory, compute, step_overhead_s, layer_overhead_s, points, error_bands, ...}}}"""
    p = calibration_path()
    return read_json(p, "calibration.json") if p.is_file() else {}


def measurement_dirs() -> list[Path]:
    d = ROOT / "measurements"
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


@lru_cache(maxsize=1)
def kernels() -> dict:
    return read_json(ROOT / "kernels.json", "kernels.json")


def efficiency_defaults() -> dict[str, float]:
    return {k: float(v["value"]) for k, v in kernels()["efficiency_defaults"].items()}


def kernel_family(fmt_family: str, fmt_id: str) -> dict:
    fams = kernels()["families"]
    fid = fmt_id.lower()
    try:
        fmt = formats().get(fmt_id)
    except PlannerInputError:
        fmt = None
    if fmt is not None and fmt.kernel:  # a format that names the kernels it runs on (W4A16: Marlin, as GPTQ)
        key = fmt.kernel
    elif fmt_family == "bitsandbytes":
        key = "bitsandbytes-int8" if "int8" in fid else "bitsandbytes-4bit"
    elif fid.startswith("mxfp4"):
        key = "mxfp4"
    else:
        key = fmt_family
    return fams.get(key, fams["float"])


def host_bandwidth_bytes_per_s() -> float:
    return float(kernels()["host_memory_bandwidth_bytes_per_s"]["value"])


def reference_dir(path: str | Path | None = None) -> Path | None:
    """The published reference data: ``path`` (or its ``profiling/`` subfolder), else the slices
    carried in ``profiles/reference`` (profiles/reference/README.md); None when neither exists."""
    if path:
        p = Path(path)
        if not p.is_dir():
            return None
        return p / "profiling" if (p / "profiling").is_dir() else p
    d = ROOT / "reference"
    return d if d.is_dir() else None


@lru_cache(maxsize=32)
def _reference_csv(path: str, mtime: float):
    import pandas as pd
    return pd.read_csv(path)


def reference_table(folder: Path, name: str):
    """``name`` from a reference folder as a DataFrame (``name`` or ``name.gz``), or None."""
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return _reference_csv(str(cand), cand.stat().st_mtime).copy()
    return None


def e2e_runs() -> tuple[tuple[str, object], ...]:
    """The committed end-to-end predictions (profiles/validation/e2e-<engine>.csv, written by
    ``benchmarks/bench_e2e.py --write``): (file name, DataFrame) per engine."""
    folder = ROOT / "validation"
    return tuple((p.name, _reference_csv(str(p), p.stat().st_mtime).copy()) for p in sorted(folder.glob("e2e-*.csv")))


def reference_names(folder: Path) -> tuple[str, ...]:
    """The table names in a reference folder (``.gz`` dropped, so each works with reference_table)."""
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.name.removesuffix(".gz") for p in folder.iterdir() if p.name.endswith((".csv", ".csv.gz"))))


@lru_cache(maxsize=4)
def engine_table(engine: str):
    """The versioned start-up rules of a serving engine (profiles/engines/<engine>.json)."""
    from .engines import EngineTable
    names = sorted(p.stem for p in (ROOT / "engines").glob("*.json"))
    if engine not in names:
        raise PlannerInputError("engine", f"no start-up rules for {engine!r}", f"choose one of {', '.join(names)}")
    return EngineTable.from_dict(_read_json(ROOT / "engines" / f"{engine}.json", f"profiles/engines/{engine}.json"))


def latency_bands(engine: str) -> dict[str, dict]:
    """The measured spread of TTFT / TPOT / e2e for ``engine``'s plans: measured / predicted at the
    band's ``percentiles`` (5th-95th or wider, planner/fit_e2e.py ``band_tail``) of held-out published
    runs (written by benchmarks/bench_e2e.py --write; empty when the engine has no such runs)."""
    path = ROOT / "engines" / f"{engine}.json"
    if not path.is_file():
        return {}
    return dict(read_json(path, f"profiles/engines/{engine}.json").get("latency_bands") or {})


def engine_log_dir() -> Path:
    return ROOT / "engine-logs"


@lru_cache(maxsize=1)
def engine_logs() -> tuple[tuple[str, str, dict], ...]:
    """Every committed start-up log: (id, text, its metadata JSON), profiles/engine-logs/<engine>/."""
    out = []
    for p in sorted(engine_log_dir().glob("*/*.log")):
        meta_path = p.with_suffix(".json")
        meta = _read_json(meta_path, f"profiles/engine-logs/{p.parent.name}/{meta_path.name}") if meta_path.is_file() else {}
        out.append((p.stem, p.read_text(encoding="utf-8", errors="replace"), meta))
    return tuple(out)


def engine_calibration_path() -> Path:
    return ROOT / "engine_calibration.json"


@lru_cache(maxsize=1)
def engine_calibrations() -> tuple[dict, ...]:
    """Entries saved by `engine-log --save`: what a real start-up log measured (planner/logcheck.py)."""
    p = engine_calibration_path()
    return tuple(_read_json(p, "engine_calibration.json").get("entries", [])) if p.is_file() else ()
