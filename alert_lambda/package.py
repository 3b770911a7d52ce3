"""Build the alert Lambda's deployment package: a reproducible zip with only what the function needs.

    python -m alert_lambda.package --out dist/alert_lambda.zip [--wheel-dir dist/wheels-cache]
        [--download] [--no-deps] [--arch x86_64|arm64] [--python-version 3.12]

What goes in: `alert_lambda/` (without `local_esm/`, the local poller, and this packager),
`contracts/`, and the runtime dependencies the Lambda Python runtime lacks, unpacked from pinned
wheels for its architecture and Python (`LAMBDA_REQUIREMENTS`; boto3/botocore come with the runtime).
`tzdata` is included so `zoneinfo` finds the site time zones whether or not the runtime image ships
the system database. No tests, no `__pycache__`, no `.pyc`.

Reproducible: the same sources and wheels give the same bytes. Entries are sorted, every timestamp
is 1980-01-01 00:00:00, every file is `-rw-r--r--`, compression level fixed, no directory entries.

`--download` fetches the pinned wheels with `pip download --only-binary=:all:` for the Lambda's
platform into `--wheel-dir` (PyPI, once: pip skips files already there). `--no-deps` zips our code
only (tests; a layer holding the dependencies).
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("dist/alert_lambda.zip")
DEFAULT_WHEEL_DIR = Path("dist/wheels-cache")
DEFAULT_PYTHON_VERSION = "3.12"  # the function's runtime (infra/modules/alerts: python3.12)
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# What the function imports beyond the standard library and boto3, with every dependency pinned so
# that a download next year gives the same wheels (the versions the repository's lock file pins).
LAMBDA_REQUIREMENTS = (
    "aws-lambda-powertools==3.37.0",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types==0.8.0",
    "typing-extensions==4.16.0",
    "typing-inspection==0.4.5",
    "jmespath==1.1.0",
    "tzdata==2026.6",
)
PACKAGES = ("alert_lambda", "contracts")
EXCLUDED_MODULES = frozenset({"alert_lambda/package.py"})
EXCLUDED_PACKAGES = ("alert_lambda/local_esm/",)  # the local poller: on AWS the Lambda service polls
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
FILE_MODE = 0o100644  # regular file, rw-r--r--
_WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


class PackageError(RuntimeError):
    """The package cannot be built (missing or wrong wheels, unreadable sources, download failed)."""


def _skipped(name: str) -> bool:
    parts = name.split("/")
    return "__pycache__" in parts or name.endswith((".pyc", ".pyo", "/"))


def source_files(root: Path = REPO_ROOT) -> Iterator[tuple[str, bytes]]:
    """(path in the zip, content) of our own modules: `alert_lambda/` and `contracts/`, Python only."""
    for package in PACKAGES:
        directory = root / package
        if not (directory / "__init__.py").is_file():
            raise PackageError(f"{directory} is not a Python package")
        for path in sorted(directory.rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if name in EXCLUDED_MODULES or name.startswith(EXCLUDED_PACKAGES) or _skipped(name):
                continue
            yield name, path.read_bytes()


def wheel_matches(filename: str, python_version: str, arch: str) -> bool:
    """Whether a wheel file installs on the Lambda runtime (`python_version`, manylinux `arch`)."""
    match = _WHEEL_NAME.match(filename)
    if match is None:
        return False
    cp = "cp" + python_version.replace(".", "")
    python_ok = any(tag in {"py3", cp} for tag in match["py"].split(".")) or "abi3" in match["abi"]
    machine = "aarch64" if arch == "arm64" else arch
    platforms = match["plat"].split(".")
    platform_ok = platforms == ["any"] or any(
        plat.startswith("manylinux") and plat.endswith(machine) for plat in platforms
    )
    return python_ok and platform_ok


def wheel_files(wheel_dir: Path, python_version: str, arch: str) -> Iterator[tuple[str, bytes]]:
    """(path in the zip, content) of every installable file of the pinned wheels in `wheel_dir`."""
    wanted = {_normalise(req.split("==")[0]): req.split("==")[1] for req in LAMBDA_REQUIREMENTS}
    found: dict[str, Path] = {}
    for path in sorted(wheel_dir.glob("*.whl")) if wheel_dir.is_dir() else []:
        match = _WHEEL_NAME.match(path.name)
        if match is None or _normalise(match["name"]) not in wanted:
            continue
        name = _normalise(match["name"])
        if match["version"] == wanted[name] and wheel_matches(path.name, python_version, arch):
            found[name] = path
    missing = sorted(f"{name}=={version}" for name, version in wanted.items() if name not in found)
    if missing:
        raise PackageError(
            f"no wheel for python {python_version} {arch} in {wheel_dir} for: {', '.join(missing)} "
            f"(run with --download, or `make package-lambda`)"
        )
    for name in sorted(found):
        try:
            with zipfile.ZipFile(found[name]) as wheel:
                for info in sorted(wheel.infolist(), key=lambda i: i.filename):
                    target = _install_path(info.filename)
                    if target is not None and not _skipped(target):
                        yield target, wheel.read(info)
        except zipfile.BadZipFile:
            raise PackageError(f"{found[name]} is not a valid wheel (delete it and download again)") from None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_path(name: str) -> str | None:
    """Where a wheel entry lands in site-packages (the zip root), or None for scripts and headers."""
    first, _, rest = name.partition("/")
    if first.endswith(".data"):
        kind, _, inner = rest.partition("/")
        return inner if kind in {"purelib", "platlib"} and inner else None
    return name


def download_wheels(wheel_dir: Path, python_version: str, arch: str) -> None:
    """`pip download` the pinned wheels for the Lambda platform into `wheel_dir` (no builds, no deps
    beyond the pinned list, which is complete)."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--no-deps", "--implementation", "cp",
        "--platform", PLATFORMS[arch], "--python-version", python_version,
        "--dest", str(wheel_dir), *LAMBDA_REQUIREMENTS,
    ]  # fmt: skip
    logger.info(
        "downloading %d pinned wheels for python %s %s into %s",
        len(LAMBDA_REQUIREMENTS),
        python_version,
        arch,
        wheel_dir,
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [
            line for line in done.stderr.splitlines() if line.startswith("ERROR")
        ] or done.stderr.splitlines()
        raise PackageError(f"pip download failed: {lines[-1] if lines else done.returncode}")


def write_zip(entries: Sequence[tuple[str, bytes]], out: Path) -> None:
    """Write `entries` to `out` deterministically: sorted, fixed dates and modes, fixed compression."""
    names = [name for name, _ in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PackageError(f"two sources for the same file: {', '.join(duplicates[:5])}")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, so the mode bits are read
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    temporary.replace(out)


def build(
    out: Path,
    *,
    with_deps: bool = True,
    wheel_dir: Path = DEFAULT_WHEEL_DIR,
    python_version: str = DEFAULT_PYTHON_VERSION,
    arch: str = "x86_64",
    root: Path = REPO_ROOT,
) -> list[str]:
    """Build the zip at `out`; the names it holds."""
    entries = list(source_files(root))
    if with_deps:
        entries += list(wheel_files(wheel_dir, python_version, arch))
    write_zip(entries, out)
    return sorted(name for name, _ in entries)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alert_lambda.package", description="Build the alert Lambda's reproducible zip."
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"Zip to write (default {DEFAULT_OUT})."
    )
    parser.add_argument(
        "--wheel-dir",
        type=Path,
        default=DEFAULT_WHEEL_DIR,
        help=f"Folder of the pinned dependency wheels (default {DEFAULT_WHEEL_DIR}).",
    )
    parser.add_argument(
        "--download", action="store_true", help="Fetch missing pinned wheels from PyPI first (default off)."
    )
    parser.add_argument(
        "--no-deps", action="store_true", help="Zip alert_lambda/ and contracts/ only (default: with deps)."
    )
    parser.add_argument(
        "--arch", choices=sorted(PLATFORMS), default="x86_64", help="Lambda architecture (default x86_64)."
    )
    parser.add_argument(
        "--python-version",
        default=DEFAULT_PYTHON_VERSION,
        help=f"Python of the Lambda runtime (default {DEFAULT_PYTHON_VERSION}).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not re.fullmatch(r"3\.\d{1,2}", args.python_version):
        print(f"error: --python-version must look like 3.12, got {args.python_version!r}", file=sys.stderr)
        return 2
    try:
        if args.download and not args.no_deps:
            download_wheels(args.wheel_dir, args.python_version, args.arch)
        names = build(
            args.out,
            with_deps=not args.no_deps,
            wheel_dir=args.wheel_dir,
            python_version=args.python_version,
            arch=args.arch,
        )
    except (PackageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(names)} files, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
