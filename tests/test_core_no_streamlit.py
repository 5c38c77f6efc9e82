"""``core/`` never imports Streamlit: the UI depends on core, never the other way round."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import core

CORE_DIR = Path(core.__file__).resolve().parent


def _is_dynamic_import(node: ast.Call) -> bool:
    """``importlib.import_module("x")`` or ``__import__("x")`` with a literal name."""
    name = getattr(node.func, "attr", getattr(node.func, "id", None))
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            names.add(node.args[0].value)
    return names


def test_the_scan_sees_imports():
    """Guard against a scanner that finds nothing: known imports are found, nested ones too."""
    assert len(list(CORE_DIR.rglob("*.py"))) >= 10
    assert "torch" in imported_modules(CORE_DIR / "models" / "loading.py")
    # imported inside functions
    assert "transformers" in imported_modules(CORE_DIR / "models" / "loading.py")
    assert "click" in imported_modules(CORE_DIR / "cli" / "__init__.py")


def test_scanner_flags_streamlit(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "def page():\n"
        "    import streamlit as st\n"
        "    from streamlit.testing.v1 import AppTest\n"
        "    importlib.import_module('streamlit')\n"
    )
    assert {"streamlit", "streamlit.testing.v1"} <= imported_modules(sample)


def test_no_core_module_imports_streamlit():
    offenders = {
        str(path.relative_to(CORE_DIR.parent)): sorted(
            name
            for name in imported_modules(path)
            if name == "streamlit" or name.startswith("streamlit.")
        )
        for path in sorted(CORE_DIR.rglob("*.py"))
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}


def test_importing_every_core_module_does_not_load_streamlit():
    modules = sorted(
        ".".join(path.relative_to(CORE_DIR.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in CORE_DIR.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
