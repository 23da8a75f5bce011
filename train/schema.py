"""The shape of a training config: every key a run may set and its default, in one place.

`check_config` runs on every loaded config (base + preset + `--set` overrides), so a misspelt key
(`loss.identity_wieght`) fails with the keys that exist instead of being silently ignored, and the
defaults written below are filled in, so the config a run records says every value it used.

Three kinds of section:
- fixed: the keys below (`SECTIONS`);
- owned by a procedure: `loss` and any section a procedure declares in its `config_sections`
  (each procedure owns its loss weights and their defaults);
- constructor arguments: `generator`, `discriminator`, `recognizer`, `head`, `degradation` and `distill.jitter`
  are passed as keyword arguments, so their keys are checked against the callee's signature.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from fhsdk.errors import ConfigError
from fhsdk.models.registry import model_constructor
from train.degradations import Degradation, similarity_jitter
from train.losses.margin import HEADS
from train.recognizer import SmallRecognizer

REQUIRED = object()  # a key without a default: the config must give it
OPEN = object()  # a mapping whose keys are checked against the function it is passed to

_OPTIMIZER = {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.0, "milestones": [], "gamma": 0.5}

# Bookkeeping keys load_config writes itself.
TOP_LEVEL = {"method": REQUIRED, "preset": None, "seed": 0, "config_file": None}

SECTIONS: dict[str, dict[str, Any]] = {
    "data": {
        "celeba_dir": None,
        "cache": None,
        "hr_side": 128,
        "split": "identity",
        "val_fraction": 0.1,
        "max_identities": None,
        "batch_size": REQUIRED,
        "hflip": True,
        "num_workers": 0,
        "detect_device": "cpu",
    },
    "optim": {"generator": _OPTIMIZER, "discriminator": _OPTIMIZER, "recognizer": _OPTIMIZER},
    "train": {
        "steps": REQUIRED,
        "checkpoint_every": 1000,
        "keep_checkpoints": 2,
        "keep_every": None,  # also keep the checkpoints of every N-th step (for averaging weights along the run)
        "threads": None,
        "init_generator": None,
    },
    "deploy": {"recognizer": "original"},
}


def _constructor_keys(function: Callable) -> set[str] | None:
    """Keyword arguments `function` accepts (None: it takes **kwargs we cannot see through). A
    registry entry `def edsr(**kwargs) -> EDSR` passes them on to the class it returns: read that."""
    parameters = list(inspect.signature(function).parameters.values())
    if [p.kind for p in parameters] == [inspect.Parameter.VAR_KEYWORD]:
        try:
            returned = typing.get_type_hints(function).get("return")
        except (NameError, TypeError):
            returned = None
        if isinstance(returned, type):
            return _constructor_keys(returned)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def _unknown(where: str, given: Mapping, allowed) -> None:
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"unknown config key '{where}{key}'{hint}: known keys here are {', '.join(sorted(map(str, allowed)))}"
            )


def _fill(where: str, given: dict, schema: Mapping[str, Any]) -> None:
    """Check `given` against `schema` and fill its defaults, in place (nested dicts recurse)."""
    _unknown(where, given, schema)
    for key, default in schema.items():
        if default is OPEN:
            given.setdefault(key, {})
        elif isinstance(default, dict):
            if key in given:
                if not isinstance(given[key], dict):
                    raise ConfigError(f"config key '{where}{key}' must be a section (a mapping)")
                _fill(f"{where}{key}.", given[key], default)
        elif key not in given:
            if default is REQUIRED:
                raise ConfigError(f"config key '{where}{key}' is required")
            given[key] = list(default) if isinstance(default, list) else default


def _check_arguments(
    where: str, given: Mapping, function: Callable, fixed: tuple[str, ...] = (), extra: tuple[str, ...] = ("name",)
) -> None:
    """`fixed`: arguments the code passes itself; `extra`: keys read before the call (the name)."""
    accepted = _constructor_keys(function)
    if accepted is not None:
        _unknown(where, given, (accepted - set(fixed)) | set(extra))


def check_config(cfg: dict, procedure: type) -> dict:
    """Check a merged config against the schema and `procedure`'s own sections; fill defaults in place."""
    owned = dict(getattr(procedure, "config_sections", {}))
    known = {*TOP_LEVEL, *SECTIONS, *owned, "generator", "discriminator", "recognizer", "head", "degradation"}
    _unknown("", cfg, known)
    for key, default in TOP_LEVEL.items():
        if key not in cfg:
            if default is REQUIRED:
                raise ConfigError(f"config key '{key}' is required")
            cfg[key] = default
    for section, schema in {**SECTIONS, **owned}.items():
        if section in cfg:
            _fill(f"{section}.", cfg[section], schema)
    if "generator" in cfg:
        generator = cfg["generator"]
        _check_arguments(
            "generator.", generator, model_constructor(generator.get("name", "")), extra=("name", "lr_side")
        )
    if "recognizer" in cfg:
        recognizer = cfg["recognizer"]
        name = recognizer.get("name", "")
        _check_arguments(
            "recognizer.",
            recognizer,
            SmallRecognizer if name == "small_cnn" else model_constructor(name),
            extra=("name", "feature_layers", "input_size", "weights"),
        )
    if "discriminator" in cfg:
        _check_arguments(
            "discriminator.",
            cfg["discriminator"],
            model_constructor(cfg["discriminator"].get("name", "vgg_discriminator")),
        )
    if "head" in cfg:
        head = cfg["head"]
        if head.get("name") not in HEADS:
            raise ConfigError(f"head.name must be one of {', '.join(HEADS)}, got {head.get('name')!r}")
        _check_arguments("head.", head, HEADS[head["name"]], fixed=("in_features", "num_classes"))
    if "degradation" in cfg:
        _check_arguments("degradation.", cfg["degradation"], Degradation, fixed=("native_side",))
    jitter = cfg.get("distill", {}).get("jitter")
    if jitter:
        _check_arguments("distill.jitter.", jitter, similarity_jitter, fixed=("hr", "generator"))
    return cfg
