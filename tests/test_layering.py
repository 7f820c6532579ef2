"""ARCHITECTURE rule 1, checked mechanically: main.py -> app.gui -> app.core -> models.

Importing every core and models module must not load Qt, pyqtgraph or the GUI (run in a fresh
interpreter, where nothing else has imported them), and no file under models/ or app/core/ may
even mention such an import, including imports hidden inside functions.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = ("PyQt5", "pyqtgraph", "app.gui")

_PROBE = """
import importlib, json, pkgutil, sys
import app.core, models
names = []
for package in (app.core, models):
    names.append(package.__name__)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        names.append(info.name)
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:  # reported, so a broken module is not mistaken for a clean one
        failed[name] = f"{type(error).__name__}: {error}"
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PyQt5", "pyqtgraph")
                or m == "app.gui" or m.startswith("app.gui."))
print(json.dumps({"modules": names, "failed": failed, "gui_modules": loaded}))
"""


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
    return found


def _offenders(folder: Path, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for path in sorted(folder.rglob("*.py")):
        bad = sorted(m for m in _imported_modules(path)
                     if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            out[str(path.relative_to(REPO))] = bad
    return out


def test_core_and_models_import_without_qt():
    import json

    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True,
                            encoding="utf-8", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "app.core.volume" in report["modules"] and "app.core.view_state" in report["modules"]
    assert report["failed"] == {}
    assert report["gui_modules"] == []


def test_models_never_import_app():
    assert _offenders(REPO / "models", ("app",)) == {}


def test_core_source_never_imports_qt_or_the_gui():
    assert _offenders(REPO / "app" / "core", FORBIDDEN_IN_CORE) == {}


def test_the_scanner_sees_hidden_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from app.core import volume\n    import PyQt5.QtCore\n"
                      "    importlib.import_module('pyqtgraph')\n", encoding="utf-8")
    assert _imported_modules(sample) == {"app.core", "PyQt5.QtCore", "pyqtgraph"}
