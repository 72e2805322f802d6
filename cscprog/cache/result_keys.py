"""The key of a predictor call in the result layer: everything that determines its prompt and its LM request.

A result key covers the signature (its name, instructions, and every field's name, kind, prefix, description,
type and default, in order), the demos, the inputs, the adapter (its class and settings), the predictor's
decision fields, and the LM request settings: model, model type, the LM's kwargs merged with the call's config
(sampling, ``max_tokens``, ``rollout_id``, ``seed``, ``n``, ...) and the endpoint. It goes through
:func:`cscprog.cache.keys.request_key`, so the endpoint is normalized, the cache's version tag is included and
credentials (``api_key``, secret headers, ``user:password@`` in URLs) never reach it.

Example:
    ```python
    key = result_key(lm, config={}, signature=predict.signature, demos=[], inputs={"question": "Hi?"},
                     adapter=dspy.ChatAdapter(), fields={}, version="1")
    ```
"""

from __future__ import annotations

import enum
import typing
import weakref
from typing import Any

import pydantic
from pydantic_core import PydanticUndefined

from cscprog.cache.keys import request_key

__all__ = ["result_key"]

_LAYER_TAG = "predict-result-v1"
_signature_specs: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def _annotation(annotation: Any) -> Any:
    """A JSON description of a field's type that changes whenever the type does."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return {"model": f"{annotation.__module__}.{annotation.__qualname__}", "schema": annotation.model_json_schema()}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        members = [[member.name, repr(member.value)] for member in annotation]
        return {"enum": f"{annotation.__module__}.{annotation.__qualname__}", "members": members}
    arguments = typing.get_args(annotation)
    if arguments:
        origin = typing.get_origin(annotation)
        if origin is typing.Literal:
            return {"literal": [repr(argument) for argument in arguments]}
        return {"origin": repr(origin), "args": [_annotation(argument) for argument in arguments]}
    return repr(annotation)


def _signature_spec(signature: Any) -> list[Any]:
    """Name, instructions and fields of a signature class (memoized per class: DSPy signatures are immutable,
    ``with_instructions`` and friends return new classes)."""
    found = _signature_specs.get(signature)
    if found is None:
        fields = []
        for name, info in signature.fields.items():
            default = info.default
            fields.append({
                "name": name,
                "extra": info.json_schema_extra,
                "type": _annotation(info.annotation),
                "default": None if default is PydanticUndefined else repr(default),
            })
        found = [signature.__name__, signature.instructions, fields]
        _signature_specs[signature] = found
    return found


def _demo(demo: Any) -> Any:
    if hasattr(demo, "toDict"):
        input_keys = getattr(demo, "_input_keys", None)
        return {"demo": demo.toDict(), "inputs": sorted(input_keys) if input_keys is not None else None}
    return {"demo": demo}


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _setting(value: Any) -> Any:
    """An adapter setting for the key: classes (``native_response_types``) by their qualified names."""
    if isinstance(value, type):
        return _class_name(value)
    if isinstance(value, (list, tuple)):
        return [_setting(item) for item in value]
    return value


def _adapter_spec(adapter: Any) -> dict[str, Any]:
    settings = {name: _setting(value) for name, value in vars(adapter).items() if name != "callbacks"}
    return {"class": _class_name(type(adapter)), "settings": settings}


def result_key(
    lm: Any,
    *,
    config: dict[str, Any],
    signature: Any,
    demos: list[Any],
    inputs: dict[str, Any],
    adapter: Any,
    fields: dict[str, Any],
    version: str,
) -> str:
    """The result-layer key of one predictor call.

    Args:
        lm: The ``dspy.LM`` the call uses.
        config: The call's LM config (the predictor's config merged with the call's ``config=``).
        signature: The signature class the call formats.
        demos: The predictor's demos.
        inputs: The call's inputs (defaults filled in).
        adapter: The adapter the call uses.
        fields: The predictor's decision fields (``Predict.fields``).
        version: The cache's version tag.

    Raises:
        TypeError: something in the call cannot be serialized into a key (the call then takes the full path).
    """
    request: dict[str, Any] = {**(getattr(lm, "kwargs", None) or {}), **config}
    request["model"] = lm.model
    request["_cscprog_result"] = {
        "layer": _LAYER_TAG,
        "lm_class": _class_name(type(lm)),
        "model_type": getattr(lm, "model_type", None),
        "signature": _signature_spec(signature),
        "demos": [_demo(demo) for demo in demos],
        "inputs": {name: _typed(value) for name, value in inputs.items()},
        "adapter": _adapter_spec(adapter),
        "fields": fields,
    }
    return request_key(request, version)[0]


def _typed(value: Any) -> Any:
    """An input value, tagged with its class when it is not a JSON scalar or container (two classes with equal
    dumps format differently)."""
    if value is None or type(value) in (str, int, float, bool, list, dict):
        return value
    return {"class": _class_name(type(value)), "value": value}
