"""Run configs: one YAML shape for every file, with optional presets.

File layout (a fine-tune with one setting, as in configs/ablations/, has no presets):
    method: lai                  # a key of train.procedures.PROCEDURES
    default_preset: cpu_small
    base: {...}                  # the full config
    presets:
      cpu_small: {...}           # deep-merged over base
      gpu_full: {...}
A resolved config (base + preset + command-line overrides + seed) is what a run records next to its
checkpoints; `load_config` on that copy gives the same config back. Every loaded config is checked
against train/schema.py: an unknown key is an error, and the defaults are filled in.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import yaml

from fhsdk.errors import ConfigError
from train.schema import check_config

CONFIG_DIR = Path(__file__).parent / "configs"
JITTER_DIR = CONFIG_DIR / "jitter"  # detectors' measured landmark errors, as degradation.jitter tables


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_path(cfg: dict, dotted: str, value) -> None:
    """cfg["a"]["b"] = value for dotted = "a.b" (creating sections as needed)."""
    *parents, last = dotted.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set '{dotted}': '{key}' is not a section")
    node[last] = value


def parse_override(text: str) -> tuple[str, object]:
    """'train.steps=100' -> ('train.steps', 100); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value, e.g. train.steps=100")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def resolve_path(path: str | Path) -> Path:
    """A config path as given, else a name in train/configs (with or without .yaml)."""
    path = Path(path)
    for candidate in (path, CONFIG_DIR / path, CONFIG_DIR / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config '{path}' not found: pass a YAML file or one of: {names}")


def load_config(path: str | Path, preset: str | None = None, overrides: Sequence[str] = ()) -> dict:
    from train.procedures import PROCEDURES

    path = resolve_path(path)
    with open(path) as handle:
        doc = yaml.safe_load(handle)
    if not isinstance(doc, dict) or "method" not in doc:
        raise ConfigError(f"{path} is not a training config: it needs at least 'method:' and 'base:'")
    if "base" in doc:  # a config file with presets
        presets = doc.get("presets", {})
        preset = preset or doc.get("default_preset")
        if preset is not None and preset not in presets:
            raise ConfigError(f"{path.name} has no preset '{preset}': choose one of {', '.join(presets)}")
        cfg = deep_merge(doc["base"], presets.get(preset, {}) if preset else {})
        cfg["method"], cfg["preset"] = doc["method"], preset
    else:  # an already resolved copy, as written next to checkpoints
        if preset not in (None, doc.get("preset")):
            raise ConfigError(f"{path.name} is a resolved run config of preset '{doc.get('preset')}', not '{preset}'")
        cfg = copy.deepcopy(doc)
    for text in overrides:
        set_path(cfg, *parse_override(text))
    if cfg["method"] not in PROCEDURES:
        raise ConfigError(f"unknown method '{cfg['method']}' in {path}: choose one of {', '.join(PROCEDURES)}")
    _read_jitter_table(cfg)
    cfg["config_file"] = str(path)
    return check_config(cfg, PROCEDURES[cfg["method"]])


def _read_jitter_table(cfg: dict) -> None:
    """`degradation.jitter: NAME` -> the table in configs/jitter/NAME.yaml: a detector's measured error is
    one fact, read by every config that trains on it; the resolved config records the table itself."""
    degradation = cfg.get("degradation")
    if not isinstance(degradation, dict) or not isinstance(degradation.get("jitter"), str):
        return
    path = JITTER_DIR / f"{degradation['jitter']}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in JITTER_DIR.glob("*.yaml")))
        raise ConfigError(
            f"degradation.jitter: no table '{degradation['jitter']}': name one of {names} or give the rows"
        )
    with open(path) as handle:
        degradation["jitter"] = yaml.safe_load(handle)


def same_run(a: dict, b: dict) -> bool:
    """Configs describe the same run, ignoring the step budget, the thread count, which checkpoints are kept and
    the config file's path."""

    def strip(c: dict) -> dict:
        c = {k: v for k, v in copy.deepcopy(c).items() if k != "config_file"}
        c["train"] = {k: v for k, v in c["train"].items() if k not in ("steps", "threads", "keep_every")}
        return c

    return strip(a) == strip(b)


def dump_config(cfg: dict, path: str | Path) -> None:
    with open(path, "w") as handle:
        yaml.safe_dump(cfg, handle, sort_keys=False)
