"""The ingest Lambda's deployment zip: lambda_ingest/ and lake_contract/ with their locked
dependencies alone, and the package boundary they are held to.

The boundary is one definition, used here and by the boundary test: the two packages import
only the standard library, boto3 (the Lambda runtime has it), pyarrow (the layer has it) and
pyiceberg (the zip carries it, with its own dependencies).
"""

import ast
import os
import platform as host_platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import lake_contract
import lambda_ingest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ZIP = REPO_ROOT / "infra" / "build" / "ingest.zip"
PACKAGES = (lambda_ingest, lake_contract)

# Distributions the Lambda Python runtime ships (boto3 and what boto3 needs).
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
# Distributions the pyarrow layer provides; the AWS SDK for pandas layer has more, but these
# are the ones counted on.
LAYER_PROVIDED = frozenset({"pyarrow", "numpy", "pandas"})
# Distributions the zip carries, with every dependency not provided above.
BUNDLED = ("pyiceberg",)
# pyiceberg's own command line (pyiceberg.cli) and its Hive catalog's vendored Thrift client:
# the library never imports them, and they are ~10 MB of the 262 MB that function and layer
# share. The clean-interpreter test runs the handler and the table setup without them.
CLI_ONLY = frozenset({"click", "rich", "pygments", "markdown-it-py", "mdurl"})
UNUSED_PATHS = ("pyiceberg/cli", "hive_metastore")
# Top-level imports lambda_ingest and lake_contract may use besides the standard library.
ALLOWED_IMPORTS = frozenset({"boto3", "botocore", "pyarrow", "pyiceberg"})

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: function and layers together, unzipped
# The AWS SDK for pandas layer 3.16.1 unzipped (aws/aws-sdk-pandas issue #3331: 204 MB, up
# from 167 MB in 3.16.0; PR #3336 since brought it back to about 169 MB). The worst is assumed.
ASSUMED_LAYER_BYTES = 204_000_000


def third_party_imports(package_dir: Path) -> set[str]:
    """Top-level names a package's modules import, less the standard library."""
    imported: set[str] = set()
    for source in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    if not imported:
        raise ValueError(f"no imports found in {package_dir}: the scan is broken")
    return imported - set(sys.stdlib_module_names)


def boundary_violations() -> dict[str, set[str]]:
    """Imports of lambda_ingest or lake_contract outside the boundary (empty when none)."""
    ours = {package.__name__ for package in PACKAGES}
    allowed = {
        "lambda_ingest": ALLOWED_IMPORTS | ours,
        "lake_contract": ALLOWED_IMPORTS | {"lake_contract"},  # the contract imports no other
    }
    found = {
        package.__name__: third_party_imports(Path(package.__file__).parent) - allowed[name]
        for package, name in zip(PACKAGES, allowed, strict=True)
    }
    return {name: names for name, names in found.items() if names}


def _target_environment(platform: str, python_version: str) -> dict[str, str]:
    env = dict(default_environment())
    env |= {"python_version": python_version, "python_full_version": f"{python_version}.0"}
    if platform != "host":
        env |= {"sys_platform": "linux", "platform_system": "Linux"}
        env["platform_machine"] = platform.split("-")[0]
    return env


def _project_requirement(name: str) -> Requirement:
    """How the project itself requires `name` (with the extras it asks for)."""
    for line in metadata.requires("supermarket-lake") or []:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == canonicalize_name(name):
            return requirement
    raise LookupError(f"the project does not depend on {name}")


def bundled_distributions(platform: str, python_version: str) -> dict[str, str]:
    """name -> locked version of everything the zip carries: BUNDLED and their dependencies
    for the target, less what the runtime and the layer provide and what only pyiceberg's
    command line uses. Versions are the installed
    ones, which `uv sync --frozen` made equal to uv.lock."""
    provided = RUNTIME_PROVIDED | LAYER_PROVIDED | CLI_ONLY
    env = _target_environment(platform, python_version)
    found: dict[str, str] = {}
    pending = [_project_requirement(name) for name in BUNDLED]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in provided or name in found:
            continue
        distribution = metadata.distribution(name)
        found[name] = distribution.version
        for line in distribution.requires or []:
            dependency = Requirement(line)
            marker = dependency.marker
            wanted = marker is None or any(
                marker.evaluate(env | {"extra": extra})
                for extra in ["", *sorted(requirement.extras)]
            )
            if wanted:
                pending.append(dependency)
    return dict(sorted(found.items()))


def _install(
    target: Path, pins: Iterable[str], platform: str, python_version: str, offline: bool
) -> None:
    """The locked wheels for the target platform, installed into `target` by uv (binary only,
    from the registry or, offline, uv's cache)."""
    command = [
        str(Path(sys.executable).parent / "uv"),
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--target",
        str(target),
        "--python-platform",
        platform,
        "--python-version",
        python_version,
    ]
    if offline:
        command.append("--offline")
    result = subprocess.run(
        [*command, *pins],
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"uv could not install the bundled wheels: {result.stderr.strip()}")


def _copy_installed(target: Path, names: Iterable[str]) -> None:
    """This machine's build: the distributions as `uv sync --frozen` installed them from the
    lock, copied file by file (no registry, no cache: uv's cache cannot serve them offline)."""
    for name in names:
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            if file.parts[0] == "..":  # console scripts outside site-packages
                continue
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(distribution.locate_file(file))), destination)


def _strip_tool(platform: str) -> list[str] | None:
    """A strip that reads the target's ELF files: llvm-strip reads any; binutils' strip only
    the host's. None when there is neither."""
    if shutil.which("llvm-strip"):
        return ["llvm-strip", "--strip-unneeded"]
    same_arch = platform == "host" or platform.split("-")[0] == host_platform.machine()
    return ["strip", "--strip-unneeded"] if same_arch and shutil.which("strip") else None


def _prune(root: Path, platform: str) -> bool:
    """What Lambda never uses: byte-code caches, console scripts, typing stubs; shared
    objects lose their symbol tables (as AWS's own layer build does). True if stripped."""
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache)
    shutil.rmtree(root / "bin", ignore_errors=True)
    for unused in UNUSED_PATHS:
        shutil.rmtree(root / unused, ignore_errors=True)
    for stub in root.rglob("*.pyi"):
        stub.unlink()
    strip = _strip_tool(platform)
    if strip is None:
        return False
    objects = [str(path) for path in root.rglob("*.so*") if path.is_file()]
    if objects:
        subprocess.run([*strip, *objects], check=True, capture_output=True)
    return True


def _copy_ours(root: Path) -> None:
    for package in PACKAGES:
        source = Path(package.__file__).parent
        shutil.copytree(
            source, root / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )


def _write_zip(root: Path, out: Path) -> None:
    """Deterministic: sorted entries, fixed times, so the same inputs give the same bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(out)


@dataclass(frozen=True)
class PackageReport:
    path: Path
    zip_bytes: int
    unzipped_bytes: int
    layer_bytes: int
    distributions: dict[str, str]
    stripped: bool

    @property
    def total_bytes(self) -> int:
        return self.unzipped_bytes + self.layer_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= LAMBDA_UNZIPPED_LIMIT

    def summary(self) -> str:
        mb = 1_000_000
        verdict = "fits" if self.fits else "DOES NOT FIT"
        lines = [
            f"wrote {self.path}: {self.zip_bytes / mb:.1f} MB zipped, "
            f"{self.unzipped_bytes / mb:.1f} MB unzipped"
            + ("" if self.stripped else " (shared objects not stripped: no llvm-strip)"),
            f"bundled: {', '.join(f'{n} {v}' for n, v in self.distributions.items())}",
            f"with the layer ({self.layer_bytes / mb:.0f} MB unzipped): "
            f"{self.total_bytes / mb:.1f} MB of Lambda's {LAMBDA_UNZIPPED_LIMIT / mb:.1f} MB: "
            + verdict,
        ]
        return "\n".join(lines)


def build(
    out: Path,
    platform: str = "aarch64-manylinux_2_28",
    python_version: str = "3.12",
    layer_bytes: int | None = None,
    offline: bool = False,
) -> PackageReport:
    """Builds the zip at `out`; raises if the packages cross their boundary or the zip holds
    anything the runtime or the layer provides."""
    violations = boundary_violations()
    if violations:
        raise ValueError(f"imports outside the Lambda package boundary: {violations}")
    if platform == "host":
        python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    distributions = bundled_distributions(platform, python_version)
    with tempfile.TemporaryDirectory(prefix="lambda-package-") as scratch:
        root = Path(scratch) / "package"
        if platform == "host":
            _copy_installed(root, distributions)
        else:
            pins = [f"{name}=={version}" for name, version in distributions.items()]
            _install(root, pins, platform, python_version, offline)
        _copy_ours(root)
        stripped = _prune(root, platform)
        shipped = {canonicalize_name(p.name.split("-")[0]) for p in root.glob("*.dist-info")}
        leaked = shipped & (RUNTIME_PROVIDED | LAYER_PROVIDED)
        if leaked:
            raise ValueError(f"the zip would carry what the runtime or layer provides: {leaked}")
        unzipped = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        _write_zip(root, out)
    return PackageReport(
        path=out,
        zip_bytes=out.stat().st_size,
        unzipped_bytes=unzipped,
        layer_bytes=ASSUMED_LAYER_BYTES if layer_bytes is None else layer_bytes,
        distributions=distributions,
        stripped=stripped,
    )
