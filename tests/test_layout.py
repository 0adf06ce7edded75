"""tools/layout.py: the import-graph checker on a small fake package, then on the real attnad.

The real-package tests state the target layout (no cycles, no upward imports, every module on a
floor, no module over 400 lines); they fail until the restructuring is finished.
"""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("attnad_tools_layout", REPO / "tools" / "layout.py")
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)

FAKE = {
    "__init__.py": "",
    # floor 0 importing floor 8 inside a function: upward, function-level, and a cycle with cli
    "errors.py": "class UserError(Exception):\n    pass\n\n\ndef hint():\n"
                 "    from attnad.cli import main\n    return main\n",
    # `from attnad import errors` is the submodule, not the package __init__
    "cli.py": "import sys\nfrom attnad import errors\nimport attnad.config\n\n\ndef main():\n    pass\n",
    # guarded imports never run: no edge to detector or cli; the else branch does run
    "config.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                 "    from attnad.detector import Detector\nelse:\n"
                 "    from attnad.metrics import x\n",
    "detector.py": "import typing\nif typing.TYPE_CHECKING:\n    from attnad.cli import main\n\n\n"
                   "class Detector:\n    def fit(self):\n        import attnad.threshold\n",
    "threshold.py": "",
    "models/__init__.py": "from .a import A\n",
    "models/a.py": "from . import b\n\n\nclass A:\n    pass\n",  # a <-> b: a same-floor cycle
    "models/b.py": "from attnad.models.a import A\n",
    "models/c.py": "from attnad.models import A\nfrom .. import errors\n",  # A is a name in __init__
    "models/selfish.py": "import attnad.models.selfish\n",  # self-loop
    "mystery.py": "",  # on no floor
    "pipeline.py": "from attnad.gone import thing\nimport attnad.models.vanished\n",  # missing modules
    "metrics.py": "x = 1\n" * 401,  # too long
}


def write_package(root, files):
    """Write files under root/attnad and return that package directory."""
    pkg = root / "attnad"
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return pkg


@pytest.fixture()
def fake(tmp_path):
    return layout.analyse(write_package(tmp_path, FAKE), max_lines=400)


def pairs(edges):
    return {(e["from"], e["to"]) for e in edges}


def test_resolves_submodules_packages_and_relative_imports(fake):
    edges = pairs(fake["edges"])
    assert {("attnad.cli", "attnad.errors"), ("attnad.cli", "attnad.config"),
            ("attnad.models", "attnad.models.a"), ("attnad.models.a", "attnad.models.b"),
            ("attnad.models.b", "attnad.models.a"), ("attnad.models.c", "attnad.models"),
            ("attnad.models.c", "attnad.errors")} <= edges
    assert ("attnad.cli", "attnad") not in edges  # a submodule import is not an edge to __init__
    assert ("attnad.models.b", "attnad.models") not in edges


def test_finds_cycles_and_self_loops(fake):
    assert fake["cycles"] == [["attnad.cli", "attnad.errors"], ["attnad.models.a", "attnad.models.b"],
                              ["attnad.models.selfish"]]


def test_finds_upward_imports(fake):
    assert [(e["from"], e["to"], e["from_floor"], e["to_floor"]) for e in fake["upward"]] == [
        ("attnad.errors", "attnad.cli", 0, 8)]


def test_lists_function_level_imports(fake):
    assert sorted((e["from"], e["to"], e["line"]) for e in fake["function_imports"]) == [
        ("attnad.detector", "attnad.threshold", 8), ("attnad.errors", "attnad.cli", 6)]
    assert all(not e["in_function"] for e in fake["edges"] if e["from"] == "attnad.cli")


def test_ignores_type_checking_imports(fake):
    edges = pairs(fake["edges"])
    assert ("attnad.config", "attnad.detector") not in edges
    assert ("attnad.detector", "attnad.cli") not in edges
    assert ("attnad.config", "attnad.metrics") in edges  # the else branch


def test_reports_imports_of_missing_modules(fake):
    assert [(e["from"], e["to"]) for e in fake["missing"]] == [
        ("attnad.pipeline", "attnad.gone"), ("attnad.pipeline", "attnad.models.vanished")]
    assert not any(e["to"] in ("attnad", "attnad.models") for e in fake["edges"]
                   if e["from"] == "attnad.pipeline")  # not silently an edge to a parent


def test_floors_use_longest_prefix():
    assert layout.floor_of("attnad") == 0
    assert layout.floor_of("attnad.report.svg") == 2
    assert layout.floor_of("attnad.report.html") == 7
    assert layout.floor_of("attnad.data.io") == 2
    assert layout.floor_of("attnad.__main__") == 9
    assert layout.floor_of("attnad.database") is None  # a prefix matches whole names only
    assert layout.floor_of("attnad.mystery") is None  # the root package matches only itself


def test_exit_code_and_json(tmp_path, capsys):
    out = tmp_path / "layout.json"
    assert layout.main([str(write_package(tmp_path, FAKE)), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["unplaced"] == ["attnad.mystery"]
    assert report["too_long"] == ["attnad.metrics"]
    assert "FAILED" in capsys.readouterr().out


def test_clean_package_passes(tmp_path, capsys):
    pkg = write_package(tmp_path / "clean", {
        "__init__.py": "", "errors.py": "",
        "cli.py": "from attnad.errors import UserError\n\n\ndef main():\n    from . import config\n",
        "config.py": "from .errors import UserError\n"})
    assert layout.main([str(pkg)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")


# The real package: these state where the restructuring must end up.

@pytest.fixture(scope="module")
def real():
    return layout.analyse(REPO / "attnad", max_lines=400)


def test_real_package_has_no_cycles(real):
    assert real["cycles"] == []


def test_real_package_has_no_upward_imports(real):
    assert [f"{e['from']}:{e['line']} -> {e['to']}" for e in real["upward"]] == []


def test_real_package_modules_are_all_on_a_floor(real):
    assert real["unplaced"] == []


def test_real_package_modules_are_at_most_400_lines(real):
    lines = {m["module"]: m["lines"] for m in real["modules"]}
    assert {m: lines[m] for m in real["too_long"]} == {}


def test_real_package_imports_only_existing_parsable_modules(real):
    assert [f"{e['from']}:{e['line']} -> {e['to']}" for e in real["missing"]] == []
    assert real["unparsable"] == []
