"""Check the layering of the attnad package from its source, without importing it.

Builds the graph of imports between attnad modules (module level and inside functions,
skipping `if TYPE_CHECKING:` blocks) and reports import cycles, imports that go up the
FLOORS table below, imports made inside functions (allowed, only listed), modules not
placed on a floor, and module sizes. Exits 1 on a cycle, an upward import, an unplaced
module, a module over --max-lines lines, a file that does not parse, or an import of an
attnad module that does not exist (it would hide edges).

Usage:
    python tools/layout.py attnad
    python tools/layout.py attnad --max-lines 400 --json /tmp/layout.json
"""
import argparse
import ast
import json
import sys
from pathlib import Path

# A module may import modules on its own floor or lower ones, never higher ones.
# Longest dotted prefix wins; the root package "attnad" matches only itself (its __init__).
FLOORS = {
    # 0: the package __init__ and leaf helpers (errors, progress, metrics, limits, parallel)
    "attnad": 0, "attnad.errors": 0, "attnad.progress": 0, "attnad.metrics": 0, "attnad.limits": 0,
    "attnad.parallel": 0,
    # 1: configuration schema and loading
    "attnad.config": 1,
    # 2: building blocks: data I/O, models, robust statistics, thresholds, artifacts, SVG
    "attnad.data": 2, "attnad.models": 2, "attnad.robust": 2, "attnad.threshold": 2,
    "attnad.surprise": 2,
    "attnad.artifact": 2, "attnad.explanation": 2, "attnad.report.svg": 2,
    # 3: training and transfer loops; score/train/crossfit are the old names of today's tree
    "attnad.training": 3, "attnad.transfer": 3,
    "attnad.score": 3, "attnad.train": 3, "attnad.crossfit": 3,
    # 4: the shared estimator
    "attnad.estimator": 4,
    # 5: the tabular and time-series detectors (a package now, a single module in the old tree)
    "attnad.tabular": 5, "attnad.timeseries": 5,
    # 6: the Detector facade that picks tabular or time series
    "attnad.detector": 6,
    # 7: consumers of a fitted detector: scoring pipeline, explanations, reports, engines
    "attnad.pipeline": 7, "attnad.explain": 7, "attnad.summary": 7, "attnad.report": 7,
    "attnad.engines": 7, "attnad.htmlreport": 7,
    # 8: the command line
    "attnad.cli": 8, "attnad.cli_options": 8,
    # 9: `python -m attnad`
    "attnad.__main__": 9,
}


def floor_of(module, root="attnad"):
    """Floor of a module by longest matching prefix, or None: the layering rule needs a number."""
    matches = [p for p in FLOORS if module == p or (p != root and module.startswith(p + "."))]
    return FLOORS[max(matches, key=len)] if matches else None


def find_modules(pkg_dir):
    """Map dotted module name -> file, so imports can be resolved to files that really exist."""
    pkg_dir = Path(pkg_dir)
    modules = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = list(path.relative_to(pkg_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def is_type_checking(test):
    """True for `TYPE_CHECKING` / `typing.TYPE_CHECKING`: such imports never run, so they are no edge."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def targets(node, module, is_package, modules, root):
    """Modules one import statement loads; a submodule counts alone, not its parent __init__.

    `from attnad.pkg import name` loads attnad.pkg.name when that file exists, else attnad.pkg.
    A name returned here that is not in `modules` is an import of a missing module.
    """
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == root]
    if node.level:  # relative: `from .x import y` is relative to the module's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        if not base:
            return []
        base = ".".join(base + ([node.module] if node.module else []))
    elif node.module and node.module.split(".")[0] == root:
        base = node.module
    else:
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def module_imports(module, path, modules, root):
    """Edges out of one module (from, to, line, in_function), walking every nested scope."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges = []

    def visit(nodes, in_function):
        for child in nodes:
            if isinstance(child, ast.If) and is_type_checking(child.test):
                visit(child.orelse, in_function)  # the `else:` of TYPE_CHECKING does run
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found = targets(child, module, is_package, modules, root)
                for target in dict.fromkeys(found):  # once per statement
                    edges.append({"from": module, "to": target, "line": child.lineno,
                                  "in_function": in_function})
            nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(ast.iter_child_nodes(child), in_function or nested)

    visit(tree.body, False)
    return edges


def reachable(graph, start):
    """Modules reached from `start` by one or more imports; a module reaches itself only via a cycle."""
    seen, todo = set(), list(graph[start])
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(graph[v])
    return seen


def find_cycles(graph):
    """Strongly connected components of size > 1 plus self-loops, i.e. every import cycle.

    Plain reachability instead of Tarjan: the package has dozens of modules, and this is easy to check.
    """
    reach = {v: reachable(graph, v) for v in graph}
    components = {tuple(sorted(w for w in reach[v] if v in reach[w])) for v in graph}
    return [list(c) for c in sorted(components) if c]


def analyse(pkg_dir, max_lines=400):
    """Everything the report needs, as one JSON-ready dict; `ok` is False when the layout fails."""
    pkg_dir = Path(pkg_dir)
    root = pkg_dir.name
    modules = find_modules(pkg_dir)
    edges, unparsable, lines = [], [], {}
    for module, path in modules.items():
        lines[module] = len(path.read_text(encoding="utf-8").splitlines())
        try:
            edges += module_imports(module, path, modules, root)
        except SyntaxError as exc:
            unparsable.append({"module": module, "error": str(exc)})
    # a stale import of a moved or deleted module would otherwise hide its edges: it fails too
    missing = [e for e in edges if e["to"] not in modules]
    edges = [e for e in edges if e["to"] in modules]
    graph = {m: set() for m in modules}
    for e in edges:
        graph[e["from"]].add(e["to"])
    cycles = find_cycles(graph)
    floors = {m: floor_of(m, root) for m in modules}
    upward = [dict(e, from_floor=floors[e["from"]], to_floor=floors[e["to"]]) for e in edges
              if None not in (floors[e["from"]], floors[e["to"]]) and floors[e["to"]] > floors[e["from"]]]
    report = {
        "package": str(pkg_dir), "max_lines": max_lines,
        "modules": [{"module": m, "path": str(modules[m]), "lines": lines[m], "floor": floors[m]}
                    for m in sorted(modules)],
        "edges": edges, "cycles": cycles, "upward": upward,
        "function_imports": [e for e in edges if e["in_function"]],
        "unplaced": sorted(m for m in modules if floors[m] is None),
        "too_long": sorted((m for m in modules if lines[m] > max_lines), key=lambda m: -lines[m]),
        "unparsable": unparsable, "missing": missing,
    }
    failures = ("cycles", "upward", "unplaced", "too_long", "unparsable", "missing")
    report["ok"] = not any(report[k] for k in failures)
    return report


def render(report, top=10):
    """Readable text version of the report: problems first, then sizes."""
    mods = {m["module"]: m for m in report["modules"]}
    out = [f"Layout of {report['package']}: {len(mods)} modules, {len(report['edges'])} imports between them"]

    def section(title, items, lines):
        out.append(f"\n{title}: {len(items)}")
        out.extend(line for item in items for line in lines(item))

    section("Cycles", report["cycles"], lambda c: ["  " + ", ".join(c) + "  via:"] + [
        f"    {e['from']}:{e['line']} -> {e['to']}" for e in report["edges"]
        if e["from"] in c and e["to"] in c])
    section("Upward imports", report["upward"], lambda e: [
        f"  {e['from']} (floor {e['from_floor']}) imports {e['to']} (floor {e['to_floor']})"
        f"  line {e['line']}{'  [in function]' if e['in_function'] else ''}"])
    section("Not placed on a floor", report["unplaced"], lambda m: ["  " + m])
    section("Unparsable", report["unparsable"], lambda u: [f"  {u['module']}: {u['error']}"])
    section("Imports of missing modules", report["missing"],
            lambda e: [f"  {e['from']}:{e['line']} -> {e['to']}"])
    section("Imports inside functions (allowed)", report["function_imports"],
            lambda e: [f"  {e['from']}:{e['line']} -> {e['to']}"])
    section(f"Modules over {report['max_lines']} lines", report["too_long"],
            lambda m: [f"  {mods[m]['lines']:6d}  {m}"])
    section("Biggest modules (top)", sorted(mods, key=lambda m: -mods[m]["lines"])[:top],
            lambda m: [f"  {mods[m]['lines']:6d}  {m}"])
    out.append(f"\n{'lines':>6}  {'floor':>5}  module")
    for name, m in mods.items():
        out.append(f"{m['lines']:6d}  {'?' if m['floor'] is None else m['floor']:>5}  {name}")
    out.append("\nOK" if report["ok"] else "\nFAILED")
    return "\n".join(out)


def main(argv=None):
    """Command line entry: text report to stdout, optional JSON, exit 1 when the layout fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", nargs="?", default="attnad", help="package directory")
    parser.add_argument("--max-lines", type=int, default=400)
    parser.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    args = parser.parse_args(argv)
    report = analyse(args.package, args.max_lines)
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
