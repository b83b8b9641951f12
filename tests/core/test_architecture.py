"""The architecture as the code has it (issue 31): no import cycle at any level (function-level
imports included), no core module importing a plugin, modules / functions / classes of a size one
mind holds, and docs/architecture.md's module list matching the package. Read from the source
(ast), nothing imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMITS = {"module": 600, "function": 80, "class": 300}


def _modules() -> dict[str, Path]:
    out = {}
    for base, drop in (("automl_tl", 0), ("plugins", 1)):
        for path in (ROOT / base).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)[drop:]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules) -> dict[str, int]:
    """Modules of ours that ``name`` imports anywhere in its file -> the line of the first."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def ours(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            module = ours(target)
            if module and module != name:
                found.setdefault(module, node.lineno)
    return found


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_and_the_core_imports_no_plugin():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        " ".join(c) + "\n    " + "\n    ".join(f"{a} -> {b} ({modules[a].relative_to(ROOT)}:{graph[a][b]})"
                                            for a in c for b in graph[a] if b in c) for c in cycles)
    core_to_plugin = [f"{m} -> {t} ({modules[m].relative_to(ROOT)}:{line})" for m, targets in graph.items()
                      if m.split(".")[0] == "automl_tl" for t, line in targets.items() if t.split(".")[0] != "automl_tl"]
    assert not core_to_plugin, f"the core imports plugins: {core_to_plugin}"


def test_no_module_function_or_class_over_its_size():
    over = []
    for path in _modules().values():
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        if source.count("\n") > LIMITS["module"]:
            over.append(f"{where}: {source.count(chr(10))} lines (module limit {LIMITS['module']})")
        for node in ast.walk(ast.parse(source)):
            kind = ("class" if isinstance(node, ast.ClassDef) else
                    "function" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None)
            if kind and node.end_lineno - node.lineno + 1 > LIMITS[kind]:
                over.append(f"{where}:{node.lineno} {kind} {node.name}: {node.end_lineno - node.lineno + 1} lines "
                            f"(limit {LIMITS[kind]})")
    assert not over, "\n".join(over)


def test_the_architecture_page_lists_every_module_of_the_core():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```")[1].split("\nplugins/")[0]  # the core part of the tree
    listed = set(re.findall(r"^  ([a-z][a-z0-9_]*(?:\.py|/))\s", block, flags=re.M))
    core = ROOT / "automl_tl"
    present = {p.name for p in core.glob("*.py") if not p.name.startswith("_")}
    present |= {p.name + "/" for p in core.iterdir() if (p / "__init__.py").exists()}
    assert present - listed == set(), f"docs/architecture.md does not list {sorted(present - listed)}"
    assert listed - present == set(), f"docs/architecture.md lists what is gone: {sorted(listed - present)}"
