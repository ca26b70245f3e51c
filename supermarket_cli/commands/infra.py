"""`supermarket infra render` and `supermarket package-lambda`: what deploys the lake to AWS."""

from pathlib import Path

import click


@click.group(short_help="the AWS template's generated parts")
def infra() -> None:
    """The CloudFormation template (infra/template.yaml) and the production dagster.yaml."""


@infra.command(short_help="write the template's generated part and infra/dagster/dagster.yaml")
@click.option("--check", is_flag=True, help="only say whether they are current (exit 1 if not)")
def render(check: bool) -> None:
    """Write the Glue tables (from lake_contract/schema.py), the QuickSight data sets (from
    supermarket_queries/sql/) and the Dagster task definitions into infra/template.yaml, and the
    production profile into infra/dagster/dagster.yaml."""
    from supermarket_infra import template

    if check:
        stale = template.stale_files()
        for path in stale:
            print(f"stale: {path} (run: supermarket infra render)")
        if stale:
            raise SystemExit(1)
        print("infra/template.yaml and infra/dagster/dagster.yaml are current")
        return
    written = template.write_rendered()
    print("\n".join(f"wrote {path}" for path in written) or "nothing to write: all current")


@click.command(short_help="build the ingest Lambda's deployment zip")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="the zip to write (default infra/build/ingest.zip, the template's CodeUri)",
)
@click.option(
    "--platform",
    default="aarch64-manylinux_2_28",
    show_default=True,
    help="wheels for this platform (the function is arm64); 'host': this environment's own",
)
@click.option("--python", "python_version", default="3.12", show_default=True)
@click.option(
    "--layer-mb",
    type=float,
    default=None,
    help="unzipped size of the pyarrow layer to budget for (default: the assumed managed layer)",
)
@click.option("--offline", is_flag=True, help="take the wheels from uv's cache, not the registry")
def package_lambda(
    out: Path | None,
    platform: str,
    python_version: str,
    layer_mb: float | None,
    offline: bool,
) -> None:
    """Build the ingest function's zip from lambda_ingest/, lake_contract/ and their locked
    dependencies alone (pyiceberg and its own), without what the Lambda runtime (boto3) and
    the layer (pyarrow, numpy, pandas) provide; check its imports and its size."""
    from supermarket_infra import lambda_package

    report = lambda_package.build(
        out or lambda_package.DEFAULT_ZIP,
        platform=platform,
        python_version=python_version,
        layer_bytes=None if layer_mb is None else int(layer_mb * 1_000_000),
        offline=offline,
    )
    print(report.summary())
    if not report.fits:
        raise SystemExit(1)
