"""Function sizes of a package, for the code-organisation figures of a closing note: lines of
code per function (no blank, comment or docstring lines) and parameters (self/cls not counted).

    python benchmarks/function_sizes.py asdlib
"""
import ast
import sys
from pathlib import Path

root = Path(sys.argv[1])
rows, total, files = [], 0, 0
for path in sorted(root.rglob("*.py")):
    text = path.read_text(); lines = text.splitlines(); files += 1
    total += sum(1 for l in lines if l.strip())
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        skip = set()
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
        loc = sum(1 for n in range(node.lineno, node.end_lineno + 1)
                  if n not in skip and lines[n - 1].strip() and not lines[n - 1].strip().startswith("#"))
        a = node.args
        params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
        params = [p for p in params if p not in ("self", "cls")]
        rows.append((loc, len(params), f"{path.relative_to(root.parent)}:{node.name}"))
print(f"{total} non-blank lines in {files} files; {len(rows)} functions")
big = [r for r in rows if r[0] > 60 or r[1] > 6]
print(f"functions over 60 lines of code or 6 parameters: {len(big)}")
for r in sorted(rows, reverse=True)[:12]:
    print(f"  {r[0]:4d} lines {r[1]:2d} params  {r[2]}")
print("over 6 parameters:")
for r in sorted(big, key=lambda r: -r[1]):
    if r[1] > 6: print(f"  {r[1]:2d} params {r[0]:4d} lines  {r[2]}")
