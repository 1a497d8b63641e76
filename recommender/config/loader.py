"""Load settings: base YAML, then ``<name>.<RECSYS_ENV>.yaml`` overlay, then ``RECSYS_*`` variables.

Environment variables name a nested key with double underscores:
``RECSYS_CACHE__USER_PROFILE__MAX_SIZE=100`` sets ``cache.user_profile.max_size``. Values are
parsed as YAML scalars (``true``, ``5``, ``[a, b]``). Unknown keys anywhere are an error that names
the key and the file or variable it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from recommender.config.serving import ServingSettings
from recommender.config.training import TrainingSettings
from recommender.errors import ConfigError

ENV_PREFIX = "RECSYS_"
ENV_NAME_VARIABLE = "RECSYS_ENV"
CONFIG_DIR_VARIABLE = "RECSYS_CONFIG_DIR"
DEFAULT_CONFIG_DIR = "config"
SERVING_FILE = "serving_config.yaml"
TRAINING_FILE = "training.yaml"
ENVIRONMENTS = ("development", "staging", "production")

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the syntax and retry.") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, got {type(data).__name__}."
        )
    return data


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _env_overrides(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``RECSYS_A__B=v`` variables into ``{"a": {"b": v}}`` for keys of ``model``.

    A nested variable whose first key belongs to neither settings file is an error, so a typo in
    a deployment's environment does not pass silently.
    """
    overrides: dict[str, Any] = {}
    top_keys = set(model.model_fields)
    known = set(ServingSettings.model_fields) | set(TrainingSettings.model_fields)
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in known:
            raise ConfigError(
                f"{name}: unknown settings key '{path[0]}'; known top-level keys are "
                f"{', '.join(sorted(known))}. Remove the variable or fix its name."
            )
        if path[0] not in top_keys:
            continue  # belongs to the other settings file (serving vs training)
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        try:
            node[path[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: value {raw!r} is not a valid YAML scalar ({exc}).") from exc
    return overrides


def _validate(model: type[SettingsT], data: dict[str, Any], sources: str) -> SettingsT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}' (remove it or check its spelling)")
            else:
                problems.append(f"'{key}': {err['msg']}")
        raise ConfigError(f"Invalid settings from {sources}: " + "; ".join(problems)) from exc


def _load(
    model: type[SettingsT],
    filename: str,
    config_dir: str | Path | None,
    environ: Mapping[str, str] | None,
) -> SettingsT:
    env = os.environ if environ is None else environ
    directory = Path(config_dir or env.get(CONFIG_DIR_VARIABLE) or DEFAULT_CONFIG_DIR)
    base = directory / filename
    data: dict[str, Any] = {}
    sources = []
    if base.is_file():
        data = _read_yaml(base)
        sources.append(str(base))
    env_name = env.get(ENV_NAME_VARIABLE, "").strip()
    if env_name:
        if env_name not in ENVIRONMENTS:
            raise ConfigError(
                f"{ENV_NAME_VARIABLE}={env_name!r} is not one of {', '.join(ENVIRONMENTS)}."
            )
        overlay = base.with_name(f"{base.stem}.{env_name}{base.suffix}")
        if overlay.is_file():
            data = _merge(data, _read_yaml(overlay))
            sources.append(str(overlay))
    overrides = _env_overrides(model, env)
    if overrides:
        data = _merge(data, overrides)
        sources.append("RECSYS_* environment variables")
    return _validate(model, data, " + ".join(sources) or "defaults")


def load_serving_settings(
    config_dir: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ServingSettings:
    """Load ``serving_config.yaml`` with its overlay and environment overrides."""
    return _load(ServingSettings, SERVING_FILE, config_dir, environ)


def load_training_settings(
    config_dir: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> TrainingSettings:
    """Load ``training.yaml`` with its overlay and environment overrides."""
    return _load(TrainingSettings, TRAINING_FILE, config_dir, environ)
