"""The package's shape: no import cycle, imports at the top, the module -> chapter map is true."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import asdlib
from book_helpers import ROOT

PACKAGE = ROOT / "asdlib"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def asdlib_imports(tree: ast.AST, here: str):
    """(imported asdlib module, line, at module level?) for every import statement of a tree."""
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        for name in names:
            if name.startswith("asdlib"):
                # the deepest asdlib module the name refers to
                while name not in MODULES and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name != here:
                    yield name, node.lineno, id(node) in top


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path) for path in FILES}


def graph() -> dict:
    edges = {}
    for path in FILES:
        here = module_name(path)
        tree = ast.parse(path.read_text())
        edges[here] = sorted({name for name, _, _ in asdlib_imports(tree, here)} - {"asdlib"})
    return edges


def find_cycles(edges: dict) -> list:
    """Every import cycle of a graph (module -> the modules it imports), as "a -> b -> a"."""
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for other in edges.get(node, []):
            if state.get(other) == "open":
                cycles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other, stack + [other])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycle_inside_asdlib():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles: " + "; ".join(cycles)


#: The bottom layer, as the package docstring and the API page say: no other asdlib module.
FOUNDATIONS = ("layout", "runtime", "store", "features", "losses", "metrics")


def test_the_foundations_import_no_other_asdlib_module():
    edges = graph()
    wrong = {m: edges[f"asdlib.{m}"] for m in FOUNDATIONS if edges[f"asdlib.{m}"]}
    assert not wrong, f"foundation modules that import other asdlib modules: {wrong}"
    assert all(f"``{m}``" in asdlib.__doc__ for m in FOUNDATIONS)


def test_a_cycle_would_be_found():
    """The detector finds a real cycle (the test above can fail): two modules that import each
    other, and a longer loop, in a graph built by the same extractor as the package's."""
    sources = {
        "asdlib.a": "from asdlib import b\n",
        "asdlib.b": "import asdlib.a\n",
        "asdlib.c": "from asdlib import d\n",
        "asdlib.d": "from asdlib import e\n",
        "asdlib.e": "from asdlib import c, a\n",
        "asdlib.f": "from asdlib import a\n",
    }
    MODULES.update(sources)  # the extractor only names modules it knows
    try:
        edges = {here: sorted({name for name, _, _ in asdlib_imports(ast.parse(code), here)})
                 for here, code in sources.items()}
    finally:
        MODULES.difference_update(sources)
    assert edges["asdlib.e"] == ["asdlib.a", "asdlib.c"]
    assert sorted(find_cycles(edges)) == ["asdlib.a -> asdlib.b -> asdlib.a",
                                          "asdlib.c -> asdlib.d -> asdlib.e -> asdlib.c"]
    # Without the imports back (b -> a, e -> c) the same graph has none
    assert find_cycles(dict(edges, **{"asdlib.b": [], "asdlib.e": ["asdlib.a"]})) == []


def test_asdlib_modules_are_imported_at_the_top():
    """Imports inside functions hide the dependency graph (the exercises' package docstring
    shows one as an example, in a string: not an import)."""
    inside = []
    for path in FILES:
        here = module_name(path)
        for name, line, at_top in asdlib_imports(ast.parse(path.read_text()), here):
            if not at_top:
                inside.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not inside, "\n".join(inside)


def chapter_imports() -> dict:
    """Chapter number -> the asdlib modules its code cells import."""
    found = {}
    for path in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        number = int(path.name[:2])
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = re.sub(r"^(\s*)[%!].*$", r"\1pass", code, flags=re.M)  # IPython magics
        found[number] = {name for name, _, _ in asdlib_imports(ast.parse(code), "")}
    return found


def documented_map() -> dict:
    """Module -> chapters, from the package docstring ("(ch. 1, 3)", "(every chapter)")."""
    mapping = {}
    for line in asdlib.__doc__.splitlines():
        match = re.match(r"^- ``(asdlib\.\w+)``\s+- .*?(?:\((ch\. [\d, ]+|every chapter)\))?$", line)
        if match:
            chapters = match.group(2)
            if chapters is None:
                mapping[match.group(1)] = set()
            elif chapters == "every chapter":
                mapping[match.group(1)] = set(range(1, 12))
            else:
                mapping[match.group(1)] = {int(n) for n in chapters[4:].split(",")}
    return mapping


def test_the_module_map_names_every_module_and_is_true():
    mapping = documented_map()
    top_level = {name for name in MODULES if name.count(".") == 1 and name != "asdlib.__main__"}
    top_level |= {"asdlib.exercises"}
    assert set(mapping) == top_level, "modules missing from (or unknown to) the package docstring"
    imports = chapter_imports()
    wrong = [f"chapter {n} does not import {module}" for module, chapters in mapping.items()
             for n in sorted(chapters) if module not in imports[n]]
    assert not wrong, "\n".join(wrong)


def test_the_api_page_documents_every_module():
    api = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: (asdlib[\w.]*)$", api, flags=re.M))
    missing = sorted((MODULES - {"asdlib.__main__"}) - documented)
    assert not missing, f"book/api.md has no automodule for {missing}"
