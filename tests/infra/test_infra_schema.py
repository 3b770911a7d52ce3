"""infra/ against the hashicorp/aws 6.20.0 provider schema (../shared/tools/terraform-schema, the offline
stand-in for `terraform validate`): unknown resource types, arguments, blocks and attributes, missing
required arguments, module wiring and cycles. Zero errors, or the test fails with the tool's report."""

from __future__ import annotations

import subprocess
import sys

import infra_hcl
import pytest

TOOL_DIR = infra_hcl.REPO_ROOT.parent / "shared" / "tools" / "terraform-schema"
SCHEMA = TOOL_DIR / "aws_schema_6.20.0.json"


@pytest.mark.skipif(
    not (TOOL_DIR / "tfschema_check.py").is_file() or not SCHEMA.is_file(),
    reason=f"{TOOL_DIR} (the provider schema check) is absent: clone with ../shared beside the repository",
)
def test_infra_passes_the_provider_schema_check_with_zero_errors():
    # GIVEN the configuration  WHEN checked against the pinned provider's schema
    result = subprocess.run(
        [sys.executable, str(TOOL_DIR / "tfschema_check.py"), str(SCHEMA), str(infra_hcl.INFRA_DIR)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    report = result.stdout + result.stderr
    # THEN it exits 0 and reports no error
    assert result.returncode == 0, report
    assert "\n0 error(s)" in "\n" + report.splitlines()[-1], report


def test_the_pinned_provider_is_the_schemas_version():
    # the schema file is for 6.20.0: the root must pin exactly that version
    aws = infra_hcl.root().required_providers()["aws"]
    assert aws["version"] == "= 6.20.0"
