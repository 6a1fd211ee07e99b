"""The one `--set key=value` parser every command uses.

Values read as JSON (numbers such as 1e-3, lists, true/false, null), else as a YAML scalar, else as text;
`model.<field>=value` sets a model field (nested under "model"). Training commands take any run setting; commands
that only load a model take model fields, with or without the `model.` prefix.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tubelet.errors import TubeletError


def parse_value(raw: str) -> Any:
    """A `--set` value: JSON, else a YAML scalar, else the text itself."""
    text = raw.strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool | list | dict) else text


def parse_set(items: list[str], option: str = "--set", form: str = "key=value", nested: bool = True) -> dict[str, Any]:
    """`--set` items → {key: value}, with `model.<field>` keys gathered under "model" (`nested`; otherwise keys
    are kept whole, as `--meta` wants them)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TubeletError(f"{option} expects {form}, got {item!r}")
        head, dot, sub = key.partition(".")
        if dot and nested:
            if head != "model" or not sub:
                raise TubeletError(f"--set {item!r}: only model.<field> keys are nested")
            out.setdefault("model", {})[sub] = parse_value(raw)
        else:
            out[key] = parse_value(raw)
    return out


def model_overrides(items: list[str] | None) -> dict[str, Any]:
    """`--set` items of a command that loads a model → model field overrides (`model.` prefix optional)."""
    parsed = parse_set(items or [])
    nested = parsed.pop("model", {})
    return {**parsed, **nested}


__all__ = ["model_overrides", "parse_set", "parse_value"]
