"""The layout is the architecture (docs/design.md#architecture): these rules keep it so.

Read from the source with `ast`, so a rule is broken the moment an import is written,
not when some code path happens to run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support import ROOT

LAYER = ROOT / "shared" / "loyalty"
FUNCTIONS = ROOT / "functions"


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    """Every module a file imports (at any depth: deferred imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(LAYER).parts[0].removesuffix(".py")


def test_the_domain_imports_nothing_but_the_domain_and_the_standard_library() -> None:
    # Given every module of the pure rules
    for path in modules(LAYER / "domain"):
        # When its imports are read
        outside = {
            m
            for m in imported(path)
            if m.split(".")[0] in ("boto3", "botocore", "pydantic", "aws_lambda_powertools")
            or (m.startswith("loyalty.") and not m.startswith("loyalty.domain"))
        }
        # Then none reaches I/O, the schemas, the services or the edges
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("repository", ("loyalty.services", "loyalty.api", "loyalty.schemas")),
        ("adapters", ("loyalty.services", "loyalty.api", "loyalty.repository", "loyalty.schemas")),
        ("schemas", ("loyalty.services", "loyalty.api", "loyalty.repository", "loyalty.adapters")),
        ("services", ("loyalty.api",)),
    ],
)
def test_each_layer_depends_only_inwards(layer: str, forbidden: tuple[str, ...]) -> None:
    for path in modules(LAYER / layer):
        wrong = {m for m in imported(path) if m.startswith(forbidden)}
        assert not wrong, f"{path.relative_to(ROOT)} ({layer}) imports {sorted(wrong)}"


def boto3_clients(path: Path) -> list[int]:
    """Lines that create a boto3 client, resource or session."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if (
                isinstance(owner, ast.Name)
                and owner.id == "boto3"
                and node.func.attr in ("client", "resource", "Session")
            ):
                lines.append(node.lineno)
    return lines


def test_no_boto3_client_is_made_outside_the_adapters() -> None:
    checked = [p for p in modules(LAYER) if layer_of(p) != "adapters"] + modules(FUNCTIONS)
    offenders = {str(p.relative_to(ROOT)): lines for p in checked if (lines := boto3_clients(p))}
    assert offenders == {}


def test_handlers_hold_no_aws_calls_and_declare_their_settings() -> None:
    for path in modules(FUNCTIONS):
        names = imported(path)
        assert not {m for m in names if m.split(".")[0] in ("boto3", "botocore")}, path
        assert not {m for m in names if m.startswith(("loyalty.repository", "loyalty.adapters"))}, path
        # Each function checks its environment when it starts (loyalty.config.configure).
        assert "configure(" in path.read_text(), f"{path.relative_to(ROOT)} does not configure its settings"


def test_function_folders_are_python_identifiers_named_apart_by_status_kind() -> None:
    folders = sorted(p.name for p in FUNCTIONS.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert all(name.isidentifier() for name in folders), folders
    # "status" alone would not say which: the lifecycle or the ranked labels.
    assert not [name for name in folders if name in ("status", "statuses", "status_change")], folders


def test_the_readme_layout_table_matches_the_tree() -> None:
    # Given the README's layout table (rows of `| \`path\` | what |`)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("| path | what |") :].split("\n\n", 1)[0]
    listed = [row.split("`")[1] for row in section.splitlines()[2:] if row.startswith("| `")]
    # Then every path it names exists...
    missing = [p for p in listed if not list(ROOT.glob(re.sub(r"<[^>]+>", "*", p).rstrip("/")))]
    assert not missing, f"README names paths that do not exist: {missing}"
    # ...and every folder of the layer is named there
    folders = sorted(p.name for p in LAYER.iterdir() if p.is_dir() and not p.name.startswith("_"))
    unnamed = [f for f in folders if not any(f"shared/loyalty/{f}/" in p for p in listed)]
    assert not unnamed, f"README's layout table omits shared/loyalty/{unnamed}"
