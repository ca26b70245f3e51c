"""`supermarket soak`: drive a stack of its own under faults, then prove nothing was lost or
duplicated."""

from pathlib import Path

import click

from supermarket_cli.commands.options import POSITIVE


@click.command(short_help="drive a local stack of its own under faults, then reconcile")
@click.option("--minutes", type=float, required=True, help="how long the producers write")
@click.option("--rate", type=float, required=True, help="transactions/s, all producers together")
@click.option("--producers", type=POSITIVE, default=3, help="payment processors (default 3)")
@click.option("--fps", type=float, default=2.0, help="files/s, all producers together (2)")
@click.option("--fault-rate", type=float, default=0.2, help="share of S3 calls faulted in a window")
@click.option("--large-file-mb", type=float, default=100.0, help="the bad burst's large file (100)")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="state folder (default: a temporary one, removed after)")  # fmt: skip
def soak(
    minutes: float,
    rate: float,
    producers: int,
    fps: float,
    fault_rate: float,
    large_file_mb: float,
    state: Path | None,
) -> int:
    """Start moto, the fault proxy, the Lambda runtime and Dagster on free ports, write with
    several payment processors for --minutes while injecting every fault kind on a schedule
    (S3 errors, the runtime SIGKILLed mid-batch, redelivered and reordered notifications, a
    burst of bad files, a second runtime, the Dagster daemon killed during a backfill), then
    settle and reconcile. Exit code 1 on any loss, duplicate or failed check."""
    from supermarket_cli.soak.run import SoakOptions
    from supermarket_cli.soak.run import soak as run_soak

    if minutes <= 0 or rate <= 0 or fps <= 0:
        raise click.BadParameter("--minutes, --rate and --fps must be positive")
    options = SoakOptions(
        minutes=minutes,
        rate=rate,
        producers=producers,
        files_per_second=fps,
        fault_rate=fault_rate,
        large_file_bytes=int(large_file_mb * 1024 * 1024),
        state_dir=state,
    )
    return run_soak(options)
