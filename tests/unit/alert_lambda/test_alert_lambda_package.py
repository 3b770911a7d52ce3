"""alert_lambda.package: the deployment zip is reproducible and holds only what the function needs.
Offline: dependencies come from small wheels built here, in the layout pip downloads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from alert_lambda.package import LAMBDA_REQUIREMENTS, REPO_ROOT, build, wheel_matches

NOT_SHIPPED = {"alert_lambda/package.py"}  # the packager (the local poller, alert_lambda/local_esm/, is a package)


def our_modules() -> list[str]:
    """Every module of alert_lambda/ and contracts/ in the working tree, except those not shipped."""
    found = [p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("alert_lambda/*.py")]
    found += [p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("contracts/*.py")]
    return sorted(set(found) - NOT_SHIPPED)


def make_wheel(directory: Path, requirement: str, platform: str = "any", python: str = "py3") -> Path:
    """A small wheel for `requirement` (`name==version`) with a module, metadata and a script."""
    name, version = requirement.split("==")
    module = name.replace("-", "_")
    path = (
        directory / f"{module}-{version}-{python}-{'cp312' if python == 'cp312' else 'none'}-{platform}.whl"
    )
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{module}/__init__.py", f"VERSION = {version!r}\n")
        wheel.writestr(f"{module}/__pycache__/__init__.cpython-312.pyc", b"\x00compiled")
        wheel.writestr(f"{module}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
        wheel.writestr(f"{module}-{version}.data/scripts/{module}-cli", "#!python\n")
    return path


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    directory.mkdir()
    for requirement in LAMBDA_REQUIREMENTS:
        make_wheel(directory, requirement)
    return directory


def test_same_inputs_give_the_same_bytes_and_only_our_runtime_modules(tmp_path: Path):
    # WHEN the code-only package is built twice, a moment apart
    first = build(tmp_path / "a.zip", with_deps=False)
    second = build(tmp_path / "b.zip", with_deps=False)

    # THEN the two zips are byte for byte the same
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    # AND they hold alert_lambda (no local poller, no packager) and contracts, nothing else
    assert first == second == our_modules()
    assert {"alert_lambda/handler.py", "alert_lambda/messages.py", "contracts/alert.py"} <= set(first)
    assert not NOT_SHIPPED & set(first)
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == first
        assert {(i.date_time, i.external_attr >> 16, i.compress_type) for i in infos} == {
            ((1980, 1, 1, 0, 0, 0), 0o100644, zipfile.ZIP_DEFLATED)
        }
        assert archive.read("alert_lambda/handler.py") == (REPO_ROOT / "alert_lambda/handler.py").read_bytes()


def test_dependencies_are_unpacked_from_the_pinned_wheels(tmp_path: Path, wheel_dir: Path):
    # GIVEN the pinned wheels, plus a wheel of another version and one of another package
    make_wheel(wheel_dir, "pydantic==1.10.0")
    make_wheel(wheel_dir, "requests==2.0.0")

    # WHEN the full package is built twice
    names = build(tmp_path / "a.zip", wheel_dir=wheel_dir)
    build(tmp_path / "b.zip", wheel_dir=wheel_dir)

    # THEN each pinned dependency is there at the zip root with its metadata; no scripts, no bytecode
    expected_deps = []
    for requirement in LAMBDA_REQUIREMENTS:
        name, version = requirement.split("==")
        module = name.replace("-", "_")
        expected_deps += [f"{module}-{version}.dist-info/METADATA", f"{module}/__init__.py"]
    assert names == sorted(our_modules() + expected_deps)
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert archive.read("pydantic/__init__.py") == b"VERSION = '2.14.4'\n"
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_a_missing_or_wrong_platform_wheel_is_a_clear_error(tmp_path: Path, wheel_dir: Path):
    # GIVEN pydantic-core only for macOS
    (core,) = wheel_dir.glob("pydantic_core-*")
    core.unlink()
    make_wheel(wheel_dir, "pydantic-core==2.50.5", platform="macosx_11_0_arm64", python="cp312")

    # WHEN built from the command line, THEN exit 2 with one line naming the missing wheel
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alert_lambda.package",
            "--out",
            str(tmp_path / "x.zip"),
            "--wheel-dir",
            str(wheel_dir),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.startswith("error: no wheel for python 3.12 x86_64 in ")
        and "pydantic-core==2.50.5" in done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    ("filename", "arch", "ok"),
    [
        ("pydantic_core-2.50.5-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", "x86_64", True),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", "arm64", False),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "arm64", True),
        ("pydantic_core-2.50.5-cp311-cp311-manylinux_2_17_x86_64.whl", "x86_64", False),
        ("pydantic_core-2.50.5-cp312-cp312-musllinux_1_1_x86_64.whl", "x86_64", False),
        ("tzdata-2026.6-py2.py3-none-any.whl", "arm64", True),
    ],
)
def test_wheel_platform_must_match_the_lambda_runtime(filename: str, arch: str, ok: bool):
    assert wheel_matches(filename, "3.12", arch) is ok
