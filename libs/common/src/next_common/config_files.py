"""Settings files of jobs and runs: YAML read into a mapping, ``--set KEY=VALUE`` overrides, and
validation whose errors name the key (``optim.lr: Extra inputs are not permitted``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from next_common.errors import InvalidArgumentError

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], raw: Any, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append("%s: %s" % (key, error["msg"]))
        raise InvalidArgumentError("%s: %s" % (where, "; ".join(problems))) from None


def parse_mapping(text: str, where: str) -> dict[str, Any]:
    """YAML (or JSON) text that must hold a mapping of settings."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError("%s: not valid YAML: %s" % (where, exc)) from None
    if not isinstance(raw, dict):
        raise InvalidArgumentError("%s: expected a mapping of settings at the top level" % where)
    return raw


def read_mapping(path: str | Path) -> dict[str, Any]:
    return parse_mapping(Path(path).read_text(encoding="utf-8"), str(path))


def apply_overrides(raw: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``key.sub=value`` pairs; values are read as YAML (numbers, booleans, lists)."""
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError("--set expects KEY=VALUE (e.g. section.key=3), not %r" % pair)
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidArgumentError("--set %s: %s is not a section" % (key, part))
            node = child
        node[leaf] = yaml.safe_load(value)
    return raw
