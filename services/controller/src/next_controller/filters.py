"""Sample filters: which verified samples of a round become training data.

Filters are plugins (``next_register_sample_filters``); the built-ins below are registered
like third-party ones. A run applies its filters in order and reports each one's drops.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from next_common.errors import InvalidArgumentError
from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_common.plugins.manager import Registry, collect


@dataclass(frozen=True)
class Sample:
    task_id: str
    sample_index: int
    completion: str
    rationale: str
    program: str | None
    passed: bool  # the fix passed every shown test in the sandbox
    trace: str | None = None


def _keep_all(samples: list[Sample], check: Any) -> list[bool]:
    return [bool(check(s)) for s in samples]


class PassesAllTests:
    description = "the fix passes every shown test in the sandbox (the paper's filter)"

    def keep(self, samples: list[Sample]) -> list[bool]:
        return _keep_all(samples, lambda s: s.passed and s.program is not None)


# Names whose use in a fix means it reaches for the test machinery or the interpreter itself.
_TAMPERING_MODULES = {"sys", "os", "builtins", "inspect", "gc", "atexit", "signal", "unittest", "pytest", "ctypes"}
_EXITS = {"exit", "quit", "_exit", "abort"}
_BUILTIN_NAMES = frozenset(dir(builtins))
_COMPARISONS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__contains__"}


def tampering(program: str, entry_point: str | None = None) -> str:
    """Why ``program`` looks like it games the tests ('' if it does not)."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return "does not parse"
    builtin_names = _BUILTIN_NAMES - {entry_point or ""}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            hit = [n for n in names if n.split(".")[0] in _TAMPERING_MODULES]
            if hit:
                return "imports %s" % hit[0]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in _EXITS:
                return "exits early (%s)" % name
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__import__", "globals", "setattr"):
            return "touches %s" % node.id
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in builtin_names:
            return "redefines the builtin %s" % node.name
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in builtin_names:
                    return "rebinds the builtin %s" % target.id
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in _COMPARISONS:
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
            if returns and all(isinstance(r.value, ast.Constant) for r in returns):
                return "defines a constant %s" % node.name
    return ""


class NoTestTampering:
    description = "drops fixes that exit early, touch test machinery or builtins, or define constant comparisons"

    def __init__(self, entry_points: dict[str, str] | None = None) -> None:
        self.entry_points = entry_points or {}

    def keep(self, samples: list[Sample]) -> list[bool]:
        return [s.program is not None and not tampering(s.program, self.entry_points.get(s.task_id)) for s in samples]


def _normal_code(program: str | None) -> str:
    if program is None:
        return ""
    try:
        return ast.dump(ast.parse(program))  # ignores formatting and comments
    except SyntaxError:
        return " ".join(program.split())


class Dedupe:
    description = "keeps one sample per task with the same normalised fix and rationale"

    def keep(self, samples: list[Sample]) -> list[bool]:
        seen: set[tuple[str, str, str]] = set()
        out = []
        for s in samples:
            key = (s.task_id, _normal_code(s.program), " ".join(s.rationale.lower().split()))
            out.append(key not in seen)
            seen.add(key)
        return out


class MaxLength:
    description = "drops completions longer than max_completion_chars"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def keep(self, samples: list[Sample]) -> list[bool]:
        return _keep_all(samples, lambda s: len(s.completion) <= self.limit)


_VALUE = re.compile(r"=\s*([^;]+)")


def trace_values(trace: str) -> set[str]:
    """Concrete values a NExT trace shows (what follows ``name=`` in its comments)."""
    values = set()
    for line in trace.splitlines():
        _, sep, comment = line.partition("#")
        if not sep:
            continue
        for match in _VALUE.finditer(comment):
            value = match.group(1).strip().rstrip(")").strip()
            if len(value) >= 2 or value.isdigit():
                values.add(value)
    return values


class RationaleCitesTrace:
    description = "keeps rationales that quote at least one concrete value from the trace (beyond the paper)"

    def keep(self, samples: list[Sample]) -> list[bool]:
        return [bool(s.trace) and _cites(s.rationale, trace_values(s.trace or "")) for s in samples]


def _cites(rationale: str, values: set[str]) -> bool:
    # Whole tokens only: the value 4 is not cited by "42" or "x4".
    return any(re.search(r"(?<![\w.])%s(?![\w.])" % re.escape(v), rationale) for v in values)


class _Builtins:
    @hookimpl
    def next_register_sample_filters(self, register: RegisterFn) -> None:
        register("passes-all-tests", lambda options: PassesAllTests())
        register("no-test-tampering", lambda options: NoTestTampering(options.get("entry_points")))
        register("dedupe", lambda options: Dedupe())
        register("max-length", lambda options: MaxLength(int(options.get("max_completion_chars", 6000))))
        register("rationale-cites-trace", lambda options: RationaleCitesTrace())


def filter_registry(extra_plugins: Iterable[Any] = (), load_entry_points: bool = True) -> Registry:
    return collect("sample filter", "next_register_sample_filters", [_Builtins()], extra_plugins, load_entry_points)


def run_filters(names: Iterable[str], registry: Registry | None = None) -> Registry:
    """The filter registry, once every name of a run's ``filters.names`` is known to it."""
    registry = registry if registry is not None else filter_registry()
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise InvalidArgumentError(
            "filters.names: unknown filter %r; available: %s" % (unknown[0], ", ".join(registry.names()))
        )
    return registry


def apply_filters(
    samples: list[Sample], names: list[str], options: dict[str, Any], registry: Registry
) -> tuple[list[Sample], dict[str, int]]:
    """The kept samples and, per filter in order, how many it dropped."""
    drops: dict[str, int] = {}
    for name in names:
        chosen = registry.get(name)(options)
        decisions = chosen.keep(samples)
        if len(decisions) != len(samples):
            raise RuntimeError("filter %r returned %d decisions for %d samples" % (name, len(decisions), len(samples)))
        drops[name] = decisions.count(False)
        samples = [s for s, keep in zip(samples, decisions, strict=True) if keep]
    return samples, drops
