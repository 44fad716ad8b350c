"""Semantic mutations of a reference solution: offline bug injection for Mbpp-R.

Each mutant changes exactly one AST node (an operator or comparison swap, an off-by-one
constant, a wrong variable, swapped branches, a wrong return value, a dropped ``not``), like
most real one-line bugs. Mutants are deduplicated on the normalised AST.
"""

from __future__ import annotations

import ast
import copy
import random
import warnings

BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
CMP_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
WRONG_RETURNS = ("None", "0", "[]")
MUTATION_KINDS = (
    "operator",
    "comparison",
    "boolean",
    "off-by-one",
    "negation",
    "swapped-branches",
    "wrong-return",
    "wrong-variable",
)

Edit = tuple[str, int, int]  # (kind, index of the node in ast.walk order, which option)


def _parse(source: str) -> ast.Module:
    # MBPP's solutions hold regexes like '\w' in plain strings: not our warnings to print.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
        return ast.parse(source)


def _local_names(tree: ast.AST) -> dict[int, list[str]]:
    """For each variable read (by node id): the other local names of its function."""
    out: dict[int, list[str]] = {}
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {a.arg for a in func.args.args}
            names |= {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            for node in ast.walk(func):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names:
                    out[id(node)] = sorted(names - {node.id})
    return out


def _options(node: ast.AST, locals_: dict[int, list[str]]) -> list[tuple[str, int]]:
    """The edits possible at ``node``: (kind, option) pairs."""
    edits: list[tuple[str, int]] = []
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINOP_SWAPS:
        edits.append(("operator", 0))
    if isinstance(node, ast.Compare):
        edits += [("comparison", i) for i, op in enumerate(node.ops) if type(op) in CMP_SWAPS]
    if isinstance(node, ast.BoolOp):
        edits.append(("boolean", 0))
    if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 10**6:
        edits += [("off-by-one", 0), ("off-by-one", 1)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        edits.append(("negation", 0))
    if isinstance(node, ast.If) and node.orelse and not (len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If)):
        edits.append(("swapped-branches", 0))
    if isinstance(node, ast.IfExp):
        edits.append(("swapped-branches", 0))
    if isinstance(node, ast.Return) and node.value is not None:
        edits += [("wrong-return", i) for i in range(len(WRONG_RETURNS))]
    edits += [("wrong-variable", i) for i in range(len(locals_.get(id(node), [])))]
    return edits


def _apply(node: ast.AST, kind: str, option: int, locals_: dict[int, list[str]], parent: dict[int, ast.AST]) -> None:
    if kind == "operator":
        assert isinstance(node, (ast.BinOp, ast.AugAssign))
        node.op = BINOP_SWAPS[type(node.op)]()
    elif kind == "comparison":
        assert isinstance(node, ast.Compare)
        node.ops[option] = CMP_SWAPS[type(node.ops[option])]()
    elif kind == "boolean":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "off-by-one":
        assert isinstance(node, ast.Constant) and type(node.value) is int
        node.value = int(node.value) + (1 if option == 0 else -1)
    elif kind == "negation":
        assert isinstance(node, ast.UnaryOp)
        _replace_in_parent(parent[id(node)], node, node.operand)
    elif kind == "swapped-branches":
        assert isinstance(node, (ast.If, ast.IfExp))
        node.body, node.orelse = node.orelse, node.body
    elif kind == "wrong-return":
        assert isinstance(node, ast.Return)
        node.value = ast.parse(WRONG_RETURNS[option], mode="eval").body
    elif kind == "wrong-variable":
        assert isinstance(node, ast.Name)
        node.id = locals_[id(node)][option]


def _replace_in_parent(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new


def _edits(tree: ast.AST) -> list[Edit]:
    locals_ = _local_names(tree)
    return [
        (kind, index, option) for index, node in enumerate(ast.walk(tree)) for kind, option in _options(node, locals_)
    ]


def _mutate(tree: ast.AST, edit: Edit) -> ast.AST:
    mutated = copy.deepcopy(tree)
    nodes = list(ast.walk(mutated))
    parent = {id(child): node for node in nodes for child in ast.iter_child_nodes(node)}
    kind, index, option = edit
    _apply(nodes[index], kind, option, _local_names(mutated), parent)
    return ast.fix_missing_locations(mutated)


def mutants(source: str, seed: int = 0, limit: int = 200) -> list[tuple[str, str]]:
    """Distinct single-edit mutants of ``source`` as ``(kind, program)``.

    The order is seeded and round-robin over kinds, so the first few mutants differ in kind.
    The unchanged program and duplicates under the normalised AST are left out.
    """
    try:
        tree = _parse(source)
    except SyntaxError:
        return []
    rng = random.Random(seed)
    by_kind: dict[str, list[Edit]] = {}
    for edit in _edits(tree):
        by_kind.setdefault(edit[0], []).append(edit)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for group in by_kind.values():
        rng.shuffle(group)
    seen = {ast.dump(tree)}
    out: list[tuple[str, str]] = []
    while len(out) < limit and any(by_kind.values()):
        for kind in kinds:
            if not by_kind[kind] or len(out) >= limit:
                continue
            try:
                program = ast.unparse(_mutate(tree, by_kind[kind].pop()))
                key = ast.dump(_parse(program))
            except (SyntaxError, ValueError, TypeError, AssertionError):
                continue
            if key not in seen:
                seen.add(key)
                out.append((kind, program + "\n"))
    return out


def normalized(source: str) -> str | None:
    """The normalised-AST key used for deduplication (None when the source does not parse)."""
    try:
        return ast.dump(_parse(source))
    except SyntaxError:
        return None
