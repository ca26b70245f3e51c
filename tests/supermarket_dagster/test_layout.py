"""The Dagster package's layering: each domain under defs/ imports no other domain (what they
share lives beside defs/), and the shared modules import no domain."""

import ast
from pathlib import Path

import supermarket_dagster

PACKAGE = Path(supermarket_dagster.__file__).parent
DOMAINS = sorted(p.name for p in (PACKAGE / "defs").iterdir() if (p / "__init__.py").exists())


def _ours(source: Path) -> set[str]:
    """The supermarket_dagster modules a file imports, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("supermarket_dagster")}


def _domains_imported(source: Path) -> set[str]:
    prefix = "supermarket_dagster.defs."
    return {n[len(prefix) :].split(".")[0] for n in _ours(source) if n.startswith(prefix)}


def test_the_scan_finds_the_domains_and_their_imports():
    assert {"history", "live", "maintenance", "reference", "sales"} <= set(DOMAINS)
    assert _domains_imported(PACKAGE / "definitions.py") == set(DOMAINS)


def test_no_domain_imports_another():
    crossing = {
        f"{source.relative_to(PACKAGE)} -> {', '.join(sorted(others))}"
        for domain in DOMAINS
        for source in (PACKAGE / "defs" / domain).rglob("*.py")
        if (others := _domains_imported(source) - {domain})
    }
    assert crossing == set()


def test_the_shared_modules_import_no_domain():
    shared = [p for p in PACKAGE.glob("*.py") if p.name != "definitions.py"]
    assert shared
    assert {p.name: _domains_imported(p) for p in shared if _domains_imported(p)} == {}
