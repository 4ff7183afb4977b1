"""Validate a form-encoded Stripe request against the request-parameter types stripe-python generates from
Stripe's OpenAPI spec (`stripe.params.*`): no unknown parameters, integers where the spec wants integers,
enum values from the spec's literals, nested objects and lists as declared."""

from __future__ import annotations

import importlib
import sys
import typing
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

_SKIP = object()


def decode_form(body: str) -> dict[str, Any]:
    """`a[b][0][c]=1&d=x` -> {"a": {"b": [{"c": "1"}]}, "d": "x"} (values stay strings, as sent)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {key: _lists(value) for key, value in node.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return node


def _resolve(annotation: Any, module: Any) -> Any:
    if isinstance(annotation, str):
        namespace = {**vars(typing), **vars(module)}
        try:
            return eval(annotation, namespace)  # noqa: S307 - annotations of an installed, trusted package
        except Exception:  # an annotation naming something outside the module (e.g. StripeContext)
            return _SKIP
    if isinstance(annotation, typing.ForwardRef):
        return _resolve(annotation.__forward_arg__, module)
    return annotation


def _fields(typed_dict: type) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for klass in reversed(typed_dict.__mro__):
        module = sys.modules.get(getattr(klass, "__module__", ""), None)
        for name, annotation in getattr(klass, "__annotations__", {}).items():
            fields[name] = (annotation, module)
    return fields


def validate(value: Any, annotation: Any, module: Any, path: str) -> list[str]:
    annotation = _resolve(annotation, module)
    if annotation is _SKIP or annotation is Any:
        return []
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.NotRequired, typing.Required) or str(origin).endswith("NotRequired"):
        return validate(value, args[0], module, path)
    if origin is typing.Union:
        errors: list[str] = []
        for option in args:
            option_errors = validate(value, option, module, path)
            if not option_errors:
                return []
            errors = option_errors
        return errors or [f"{path}: {value!r} matches none of {annotation}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not one of {args}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(value) for e in validate(item, args[0], module, f"{path}[{i}]")]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        return [e for k, v in value.items() for e in validate(v, args[1], module, f"{path}[{k}]")]
    if isinstance(annotation, type) and typing.is_typeddict(annotation):
        return validate_params(value, annotation, path)
    if annotation is int:
        return (
            [] if isinstance(value, str) and value.lstrip("-").isdigit() else [f"{path}: {value!r} is not an integer"]
        )
    if annotation is bool:
        return [] if value in ("true", "false") else [f"{path}: {value!r} is not a boolean"]
    if annotation in (str, Decimal, float):
        return [] if isinstance(value, str) else [f"{path}: expected a scalar"]
    return []


def validate_params(params: Any, typed_dict: type, path: str = "") -> list[str]:
    if not isinstance(params, dict):
        return [f"{path or 'body'}: expected an object"]
    fields = _fields(typed_dict)
    errors = []
    for key, value in params.items():
        if key not in fields:
            errors.append(f"{path}{'.' if path else ''}{key}: unknown parameter")
            continue
        annotation, module = fields[key]
        errors += validate(value, annotation, module, f"{path}{'.' if path else ''}{key}")
    return errors


def params_type(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)
