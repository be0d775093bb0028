"""Handler arguments converted and checked from their annotations, as FastAPI users expect:
path and query parameters by their type (`int`, `float`, `bool`, `str`, `list[…]`,
`Optional[…]`), bodies as dataclasses or pydantic models. A value that does not fit is answered
422 naming the field; the handler never runs."""

import dataclasses
import inspect
import typing
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._errors import HTTPError

# Names the router fills itself (see `App`).
SPECIAL = ("params", "json", "body", "headers", "peer")

_MISSING = inspect.Parameter.empty
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a handler: its name, annotation (or `None`) and default."""

    name: str
    hint: Any
    default: Any


def params_of(handler: Callable[..., Any]) -> Tuple[Param, ...]:
    try:
        hints = typing.get_type_hints(handler)
    except Exception:  # noqa: BLE001 - an unresolvable hint is no hint
        hints = {}
    return tuple(
        Param(name, hints.get(name), p.default) for name, p in inspect.signature(handler).parameters.items()
    )


def _unwrap_optional(hint: Any) -> Tuple[Any, bool]:
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _scalar(value: str, hint: Any, field: str, where: str) -> Any:
    def bad(kind: str) -> HTTPError:
        return HTTPError(
            422,
            f"{where} parameter `{field}` must be {kind}, not {value!r}",
            {"field": field, "in": where},
        )

    if hint is None or hint is str or hint is Any:
        return value
    if hint is bool:
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise bad("a boolean (true or false)")
    if hint is int:
        try:
            return int(value, 10)
        except ValueError:
            raise bad("an integer") from None
    if hint is float:
        try:
            f = float(value)
        except ValueError:
            raise bad("a number") from None
        if f != f or f in (float("inf"), float("-inf")):
            raise bad("a finite number")
        return f
    return value


def convert(value: Any, hint: Any, field: str, where: str) -> Any:
    """`value` (a string, or a list of them for a repeated query key) as `hint` says."""
    hint, _ = _unwrap_optional(hint)
    origin = typing.get_origin(hint)
    if origin in (list, List):
        (inner,) = typing.get_args(hint) or (str,)
        items = value if isinstance(value, list) else [value]
        return [_scalar(v, inner, field, where) for v in items]
    if isinstance(value, list):
        value = value[-1]
    return _scalar(value, hint, field, where)


def is_model(hint: Any) -> bool:
    """A dataclass or a pydantic model: the body, decoded into it."""
    hint, _ = _unwrap_optional(hint)
    return inspect.isclass(hint) and (dataclasses.is_dataclass(hint) or hasattr(hint, "model_validate"))


def _field_value(value: Any, hint: Any, field: str) -> Any:
    """A body field as its dataclass annotation says: JSON already typed it, so it is checked."""
    hint, optional = _unwrap_optional(hint)
    if value is None and optional:
        return None
    if is_model(hint):
        return model(value, hint, field)
    checks = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}
    want = checks.get(hint)
    if want is not None and (not isinstance(value, want) or (hint is not bool and isinstance(value, bool))):
        raise HTTPError(
            422,
            f"body field `{field}` must be {hint.__name__}, not {type(value).__name__}",
            {"field": field, "in": "body"},
        )
    if typing.get_origin(hint) in (list, List) and not isinstance(value, list):
        raise HTTPError(422, f"body field `{field}` must be a list", {"field": field, "in": "body"})
    return value


def model(value: Any, hint: Any, field: Optional[str] = None) -> Any:
    """The decoded JSON body as a dataclass or pydantic model; 422 naming the field if not."""
    hint, _ = _unwrap_optional(hint)
    prefix = f"{field}." if field else ""
    if hasattr(hint, "model_validate"):
        try:
            return hint.model_validate(value)
        except Exception as e:  # pydantic's ValidationError
            errors = getattr(e, "errors", lambda: [])()
            first = errors[0] if errors else {}
            loc = prefix + ".".join(str(p) for p in first.get("loc", ()))
            raise HTTPError(
                422,
                f"body field `{loc}`: {first.get('msg', e)}" if loc else f"the body does not fit: {e}",
                {"field": loc, "in": "body", "errors": [dict(msg=x.get("msg"), loc=list(x.get("loc", ()))) for x in errors]},
            ) from None
    if not isinstance(value, dict):
        raise HTTPError(422, f"the body must be a JSON object for {hint.__name__}", {"field": field or "", "in": "body"})
    hints = typing.get_type_hints(hint)
    args: Dict[str, Any] = {}
    for f in dataclasses.fields(hint):
        name = prefix + f.name
        if f.name in value:
            args[f.name] = _field_value(value[f.name], hints.get(f.name), name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise HTTPError(422, f"body field `{name}` is required", {"field": name, "in": "body"})
    unknown = sorted(set(value) - {f.name for f in dataclasses.fields(hint)})
    if unknown:
        raise HTTPError(
            422, f"body field `{prefix}{unknown[0]}` is not a field of {hint.__name__}", {"field": prefix + unknown[0], "in": "body"}
        )
    return hint(**args)


def query_value(param: Param, query: Dict[str, List[str]]) -> Any:
    """A parameter that is neither a path parameter nor one the router fills: from the query."""
    if param.name not in query:
        if param.default is not _MISSING:
            return param.default
        _, optional = _unwrap_optional(param.hint)
        if optional:
            return None
        raise HTTPError(422, f"query parameter `{param.name}` is required", {"field": param.name, "in": "query"})
    values = query[param.name]
    return convert(values if len(values) > 1 else values[0], param.hint, param.name, "query")
