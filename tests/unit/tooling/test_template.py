"""template.yaml is the single source of truth: lint it and check the shape it promises."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from local import template as tpl


def test_cfn_lint_passes() -> None:
    # Given the SAM template / When cfn-lint checks it / Then it reports nothing
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(tpl.TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_function_folder_is_an_importable_identifier_with_a_handler() -> None:
    for spec in tpl.functions(tpl.load()):
        folder = spec.code_uri.name
        assert folder.isidentifier(), f"{folder} is not a Python identifier"
        assert spec.module_file.exists(), f"{spec.logical_id}: {spec.module_file} is missing"


def test_layer_is_the_loyalty_package_built_by_sam() -> None:
    layer = tpl.load()["Resources"]["LoyaltyLayer"]
    # sam build runs shared/Makefile's build-<logical id> target for a makefile build.
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert "build-LoyaltyLayer:" in (tpl.ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text()
    content = tpl.ROOT / layer["Properties"]["ContentUri"]
    assert (content / "loyalty" / "__init__.py").exists()
    assert (content / "requirements.txt").exists()
    # No tests inside the layer: they would ship to /opt/python.
    assert not list(content.rglob("test_*.py"))


def test_table_has_stream_pitr_ttl_and_deletion_protection() -> None:
    props = tpl.load()["Resources"]["LoyaltyTable"]["Properties"]
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert tpl.ttl_attribute(tpl.load()) == "ttl"


def test_the_layer_ships_bytecode_python_uses_without_compiling(tmp_path: Path) -> None:
    # Given the layer's code built as sam build builds it (with this interpreter's version)
    subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(tpl.ROOT / "shared"),
            "layer-code",
            f"ARTIFACTS_DIR={tmp_path}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
    )
    target = tmp_path / "python"
    # Then every module has its bytecode, checked by no timestamp, and no stray cache came along
    sources = sorted(target.joinpath("loyalty").rglob("*.py"))
    assert sources
    for source in sources:
        assert Path(importlib.util.cache_from_source(str(source))).exists(), source
    # And Python runs that bytecode without reading the sources: a module whose source no
    # longer compiles still imports, as it would from a read-only /opt without a cache
    clock = target / "loyalty" / "domain" / "clock.py"
    clock.write_text("raise SystemExit('compiled from source')\n")
    probe = "import loyalty.domain.clock as m; print(m.now_iso())"
    out = subprocess.run(
        [sys.executable, "-B", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert out.returncode == 0 and out.stdout.strip(), out.stderr
