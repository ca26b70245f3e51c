"""`dagster-daemon`, with its backfill loop polled every BACKFILL_LOOP_SECONDS.

Dagster's backfill daemon sleeps a fixed 30 s between iterations (`execute_backfill_iteration_loop`
in dagster 1.13 reads `dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS` each time it
starts; no instance setting reaches it). A backfill launched from the UI therefore waited up to
30 s before its run was even queued: measured 29-30 s of a 44.6 s 30-day backfill, because the
daemon starts with the webserver and has just ticked when the first backfill arrives. An idle
iteration is three queries of the run storage, so polling every 2 s costs nothing measurable.

The same constant is the asset daemon's default interval; the instance sets that one explicitly
(`auto_materialize.minimum_interval_seconds`), so only the backfill loop changes.

Run as `python -m supermarket_cli.dagster_daemon run -w workspace.yaml`, exactly the arguments of
`dagster-daemon`.
"""

BACKFILL_LOOP_SECONDS = 2


def configure_backfill_loop(seconds: float = BACKFILL_LOOP_SECONDS) -> None:
    """Set the backfill daemon's sleep between iterations for this process; call it before the
    daemon controller starts."""
    from dagster._daemon import controller

    if not hasattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS"):
        # A Dagster upgrade moved the constant: fail loudly rather than silently wait 30 s again.
        raise RuntimeError(
            "dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS is gone in this Dagster "
            "version; the backfill loop's interval can no longer be set this way"
        )
    if seconds <= 0:
        raise ValueError(f"the backfill loop's interval must be positive, got {seconds}")
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = seconds  # type: ignore[assignment]


def main() -> None:
    configure_backfill_loop()
    from dagster._daemon.cli import main as dagster_daemon_main

    dagster_daemon_main()


if __name__ == "__main__":
    main()
