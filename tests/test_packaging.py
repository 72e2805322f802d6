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


def test_extra_names_survive_normalisation_and_every_mention_names_one():
    """pip normalises extra names (PEP 685): ``local-1.5b`` would install as ``local-1-5b``, or not at all."""
    import re

    from packaging.utils import canonicalize_name

    from cscprog.lm.local.weights import KNOWN_MODELS

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert {name: canonicalize_name(name) for name in extras} == {name: name for name in extras}
    sources = [ROOT / "README.md", ROOT / "pyproject.toml", *(ROOT / "docs").rglob("*.md"),
               *(ROOT / "cscprog").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    mentioned = {}
    for path in sources:
        for group in re.findall(r"cscprog\[([^\]{}<>]+)\]", path.read_text(encoding="utf-8")):
            for name in group.split(","):
                mentioned.setdefault(name.strip(), path.name)
    assert mentioned and {name: where for name, where in mentioned.items() if name not in extras} == {}
    for spec in KNOWN_MODELS.values():
        assert spec.extra in extras and f'"cscprog[{spec.extra}]"' in spec.install_hint
