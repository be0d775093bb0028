"""An OpenAPI 3.1 document for an `App`, from the same hints that convert its handlers'
arguments, in the form rrssh's Rust routers give theirs (`STREAM` routes under `get` with
`x-rrssh-method: STREAM` and an NDJSON answer)."""

import dataclasses
import re
import typing
from typing import Any, Dict, List

from . import _typed

PATH = "/.well-known/rrssh/openapi.json"

_CAPTURE = re.compile(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)\}")

_ERROR = {
    "type": "object",
    "description": "rrssh's standard error JSON",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "detail": {},
            },
            "required": ["status", "message"],
        }
    },
    "required": ["error"],
}


def _schema(hint: Any, components: Dict[str, Any]) -> Dict[str, Any]:
    hint, optional = _typed._unwrap_optional(hint)
    if hint is None or hint is typing.Any:
        out: Dict[str, Any] = {}
    elif hint is bool:
        out = {"type": "boolean"}
    elif hint is int:
        out = {"type": "integer"}
    elif hint is float:
        out = {"type": "number"}
    elif hint is str:
        out = {"type": "string"}
    elif typing.get_origin(hint) in (list, List):
        (inner,) = typing.get_args(hint) or (str,)
        out = {"type": "array", "items": _schema(inner, components)}
    elif typing.get_origin(hint) in (dict, Dict) or hint is dict:
        out = {"type": "object"}
    elif hasattr(hint, "model_json_schema"):
        schema = hint.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[hint.__name__] = schema
        out = {"$ref": f"#/components/schemas/{hint.__name__}"}
    elif dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        props = {f.name: _schema(hints.get(f.name), components) for f in dataclasses.fields(hint)}
        required = [
            f.name
            for f in dataclasses.fields(hint)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        ]
        components[hint.__name__] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        out = {"$ref": f"#/components/schemas/{hint.__name__}"}
    else:
        out = {}
    if optional and out:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def document(routes: Any, title: str, version: str) -> Dict[str, Any]:
    paths: Dict[str, Dict[str, Any]] = {}
    components: Dict[str, Any] = {}
    for route in routes:
        names = _CAPTURE.findall(route.path)
        template = _CAPTURE.sub(lambda m: "{" + m.group(1) + "}", route.path)
        params: List[Dict[str, Any]] = []
        body = None
        by_name = {p.name: p for p in route.params}
        for name in names:
            hint = by_name[name].hint if name in by_name else None
            params.append({"name": name, "in": "path", "required": True, "schema": _schema(hint, components) or {"type": "string"}})
        for p in route.params:
            if p.name in names or p.name in ("params", "body", "headers", "peer"):
                continue
            if p.name == "json" or _typed.is_model(p.hint):
                body = _schema(p.hint if _typed.is_model(p.hint) else None, components)
                continue
            _, optional = _typed._unwrap_optional(p.hint)
            required = p.default is _typed._MISSING and not optional
            params.append({"name": p.name, "in": "query", "required": required, "schema": _schema(p.hint, components) or {"type": "string"}})
        stream = route.stream
        op: Dict[str, Any] = {"operationId": route.handler.__name__}
        doc = (route.handler.__doc__ or "").strip().splitlines()
        if doc:
            op["summary"] = doc[0]
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        answer = (
            {"application/x-ndjson": {"schema": {}, "x-rrssh-items": True}}
            if stream
            else {"application/json": {"schema": {}}}
        )
        op["responses"] = {
            "200": {"description": "The stream's items, one JSON value a line" if stream else "The answer", "content": answer},
            "default": {
                "description": "An error, as rrssh's standard error JSON",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }
        if stream:
            op["x-rrssh-method"] = "STREAM"
        key = "get" if stream else route.method.lower()
        item = paths.setdefault(template, {})
        if key in item:
            key = f"x-rrssh-{route.method.lower()}"
        item[key] = op
    components["Error"] = _ERROR
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components},
    }
