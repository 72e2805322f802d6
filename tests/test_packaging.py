"""The installed package matches the source tree: every package folder is listed in pyproject.toml."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_declared():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    declared = set(setuptools["packages"])
    mapping = setuptools["package-dir"]
    found = set()
    for top, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            found.add(".".join((top, *relative)))
    # data-only folders (no __init__.py, e.g. cscprog.framework.builtin) are declared for their package data
    for name in setuptools.get("package-data", {}):
        top = max((t for t in mapping if name == t or name.startswith(t + ".")), key=len)
        folder = ROOT / mapping[top] / Path(*name.split(".")[len(top.split(".")):])
        assert folder.is_dir(), f"package-data names {name}, but {folder} is not a folder"
        found.add(name)
    assert found == declared, f"undeclared: {found - declared}, missing: {declared - found}"


def test_mapped_packages_import():
    import cscprog

    for name in ("cscprog.signatures", "cscprog.optimizers", "cscprog.framework", "cscprog.data"):
        assert importlib.import_module(name)
    assert cscprog.__version__


def test_public_api_resolves():
    import cscprog

    missing = [name for name in cscprog.__all__ if getattr(cscprog, name, None) is None]
    assert not missing
    assert {"ResponseGenerator", "Runtime", "RolePlaySimulator", "Rewriter", "load_taxonomy"} <= set(cscprog.__all__)
