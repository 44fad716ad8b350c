"""Plain-data encoding shared by the sandbox runtime and the server.

Only exact builtin types are encoded (``type(v) is list``, never ``isinstance``), so an
object with a hostile ``__eq__`` or ``__repr__`` can never cross the sandbox boundary
pretending to be data. Decoding builds fresh builtin objects, so comparisons made on
the decoded values use trusted code only.

This module runs inside the jail: standard library only.
"""

from __future__ import annotations

import array
import base64
import collections
import itertools
import json
import sys
import types
from typing import Any

MAX_ITEMS = 5_000_000  # items in one value; the byte size is capped by the message limits
MAX_DEPTH = 64
MAX_ITER_ITEMS = 10_000


# Captured at import, before any program runs: a program that rebinds these names cannot
# make its own classes pass for them.
_COUNTER = collections.Counter
_ORDERED_DICT = collections.OrderedDict
_DEFAULT_DICT = collections.defaultdict
_DEQUE = collections.deque
_DICT_ITEMS = dict.items
_BUILTIN_TYPES = {
    t.__name__: t for t in (int, float, str, bytes, bool, complex, list, tuple, dict, set, frozenset, type(None))
}


class NotPlainError(Exception):
    """The value contains an object that is not plain builtin data."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def encode(value: Any) -> Any:
    """Turn a plain value into JSON-compatible data, tagging non-JSON types."""
    budget = [MAX_ITEMS]
    return _encode(value, 0, budget)


_SCALARS = frozenset({type(None), bool, str, float})
_SMALL_INT = 2**53


_NUMBERS = frozenset({int, float, bool})


def _flat(v: list[Any] | tuple[Any, ...]) -> bool:
    """True when every item is a JSON scalar needing no tag (the common large-output case)."""
    types_ = set(map(type, v))  # C-level loops: large outputs are mostly flat lists
    if not types_ <= _SCALARS | {int}:
        return False
    if int not in types_:
        return True
    if types_ <= _NUMBERS:
        return bool(-_SMALL_INT < min(v) and max(v) < _SMALL_INT)
    return all(-_SMALL_INT < x < _SMALL_INT for x in v if type(x) is int)


PACK_MIN_ITEMS = 1024
_IS_INT = {int: True, float: False}.__getitem__
_PACKABLE = frozenset({int, float})


def _packed(v: list[Any]) -> dict[str, list[Any]] | None:
    """A long list of numbers with floats in it, as binary doubles: float-to-text is the slow part
    of encoding (HumanEval/130 returns 10 million of them). The positions of ints are listed so
    they come back as ints; an int beyond 2**53 (not exact as a double) keeps the list in JSON."""
    kinds = set(map(type, v))
    if float not in kinds or not kinds <= _PACKABLE:
        return None
    ints = list(itertools.compress(itertools.count(), map(_IS_INT, map(type, v)))) if int in kinds else []
    if not all(-_SMALL_INT < v[i] < _SMALL_INT for i in ints):
        return None
    doubles = array.array("d", v)
    if sys.byteorder == "big":
        doubles.byteswap()
    return {"$f64": [base64.b64encode(doubles.tobytes()).decode("ascii"), ints]}


def _unpacked(body: Any) -> list[Any]:
    if type(body) is not list or len(body) != 2 or type(body[0]) is not str or type(body[1]) is not list:
        raise ValueError("malformed $f64 value")
    raw = base64.b64decode(body[0], validate=True)
    if len(raw) % 8:
        raise ValueError("malformed $f64 value: %d bytes" % len(raw))
    doubles = array.array("d")
    doubles.frombytes(raw)
    if sys.byteorder == "big":
        doubles.byteswap()
    values: list[Any] = doubles.tolist()
    try:
        for i in body[1]:
            if type(i) is not int or not 0 <= i < len(values):
                raise ValueError("malformed $f64 value: int position %r" % (i,))
            values[i] = int(values[i])
    except OverflowError:
        raise ValueError("malformed $f64 value: an int position holds a non-finite number") from None
    return values


def _encode(v: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise NotPlainError("value too large or too deeply nested")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        return v if abs(v) < 2**53 else {"$int": _int_to_str(v)}
    if t is float:
        return v  # NaN and infinities use Python's JSON extension (NaN, Infinity)
    if t is list or t is tuple:
        if t is list and len(v) >= PACK_MIN_ITEMS and (packed := _packed(v)) is not None:
            budget[0] -= len(v)
            if budget[0] < 0:
                raise NotPlainError("value too large")
            return packed
        if _flat(v):
            budget[0] -= len(v)
            if budget[0] < 0:
                raise NotPlainError("value too large")
            items = v if t is list else list(v)
        else:
            items = [_encode(x, depth + 1, budget) for x in v]
        return items if t is list else {"$tuple": items}
    if t is set or t is frozenset:
        key = "$set" if t is set else "$frozenset"
        return {key: [_encode(x, depth + 1, budget) for x in v]}
    if t is dict or t is _COUNTER or t is _ORDERED_DICT or t is _DEFAULT_DICT:
        # dict.items, not the object's own items(): its class may have been patched.
        pairs = [[_encode(k, depth + 1, budget), _encode(x, depth + 1, budget)] for k, x in _DICT_ITEMS(v)]
        tag = {dict: "$dict", _COUNTER: "$counter", _ORDERED_DICT: "$ordereddict", _DEFAULT_DICT: "$defaultdict"}[t]
        return {tag: pairs}
    if t is _DEQUE:
        return {"$deque": [_encode(x, depth + 1, budget) for x in list(v)]}
    if t is type and _BUILTIN_TYPES.get(getattr(v, "__name__", "")) is v:
        return {"$type": getattr(v, "__name__", "")}
    if t is bytes:
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if t is complex:
        return {"$complex": [_encode(v.real, depth, budget), _encode(v.imag, depth, budget)]}
    if t is types.GeneratorType or t.__name__.endswith("iterator"):
        items = []
        for i, x in enumerate(v):
            if i >= MAX_ITER_ITEMS:
                raise NotPlainError("iterator longer than %d items" % MAX_ITER_ITEMS)
            items.append(_encode(x, depth + 1, budget))
        return {"$iter": items}
    raise NotPlainError(t.__name__)


def _int_to_str(v: int) -> str:
    # str(int) is limited to 4300 digits by default; hex has no such limit.
    return hex(v)


_JSON_SCALARS = frozenset({type(None), bool, int, float, str})


def decode(data: Any) -> Any:
    """Rebuild builtin objects from :func:`encode`'s output."""
    if type(data) is list:
        if set(map(type, data)) <= _JSON_SCALARS:
            return data  # json.loads already built fresh builtin objects
        return [decode(x) for x in data]
    if isinstance(data, dict):
        if len(data) != 1:
            raise ValueError("malformed plain value: %r" % list(data)[:3])
        ((tag, body),) = data.items()
        if tag == "$int":
            return int(body, 16)
        if tag == "$float":  # accepted for clients that cannot write NaN/Infinity
            return float(body)
        if tag == "$tuple":
            return tuple(decode(x) for x in body)
        if tag == "$set":
            return {decode(x) for x in body}
        if tag == "$frozenset":
            return frozenset(decode(x) for x in body)
        if tag in ("$dict", "$defaultdict"):  # a defaultdict arrives as a dict (its factory is code)
            return {decode(k): decode(x) for k, x in body}
        if tag == "$counter":
            return _COUNTER({decode(k): decode(x) for k, x in body})
        if tag == "$ordereddict":
            return _ORDERED_DICT((decode(k), decode(x)) for k, x in body)
        if tag == "$deque":
            return _DEQUE(decode(x) for x in body)
        if tag == "$type":
            if body not in _BUILTIN_TYPES:
                raise ValueError("unknown builtin type %r" % body)
            return _BUILTIN_TYPES[body]
        if tag == "$bytes":
            return base64.b64decode(body)
        if tag == "$f64":
            return _unpacked(body)
        if tag == "$complex":
            return complex(decode(body[0]), decode(body[1]))
        if tag == "$iter":
            return iter([decode(x) for x in body])
        raise ValueError("unknown plain-value tag %r" % tag)
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    raise ValueError("malformed plain value of type %s" % type(data).__name__)


def dumps(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"))
