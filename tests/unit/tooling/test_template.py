"""template.yaml is the single source of truth: lint it and check the shape it promises."""

from __future__ import annotations

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
    assert layer["Metadata"]["BuildMethod"].startswith("python3")
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
