"""LM roles are named once (:class:`cscprog.roles.Role`): no call in the library names one as a string literal."""

from __future__ import annotations

import ast
from pathlib import Path

from cscprog.config import ROLES as CONFIG_ROLES
from cscprog.roles import ROLES, Role

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "cscprog", ROOT / "signatures", ROOT / "optimizers"]
ROLE_METHODS = {"lm", "role", "lm_for", "settings", "limiter"}
"""Methods whose first argument is a role (the runtime's and the config's)."""


def _literal_roles(node: ast.AST) -> list[str]:
    """Role names written as string literals in ``node`` (a constant, or a tuple/list of them)."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List) else [node]
    return [item.value for item in items if isinstance(item, ast.Constant) and item.value in ROLES]


def literal_role_calls() -> list[str]:
    found = []
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                named = [keyword.value for keyword in node.keywords if keyword.arg in ("role", "roles")]
                method = node.func.attr if isinstance(node.func, ast.Attribute) else None
                if method in ROLE_METHODS and node.args:
                    named.append(node.args[0])
                if isinstance(node.func, ast.Name) and node.func.id == "check_setup" and len(node.args) > 1:
                    named.append(node.args[1])
                for value in named:
                    found += [f"{path.relative_to(ROOT)}:{node.lineno} {name!r}" for name in _literal_roles(value)]
    return found


def test_no_call_names_a_role_as_a_string_literal():
    assert literal_role_calls() == []


def test_roles_are_plain_names_in_config_files_and_records():
    assert CONFIG_ROLES == ROLES and all(type(name) is str for name in ROLES)
    assert Role.JUDGE == "judge" and f"{Role.JUDGE}" == "judge" and str(Role.CUSTOMER_ASSISTANT) == "customer_assistant"
