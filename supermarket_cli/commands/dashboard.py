"""`supermarket dashboard`: the analysts' page over the curated views, on one lake."""

import click

from supermarket_cli.defaults import DEFAULT_DASHBOARD_PORT
from supermarket_dashboard.settings import DEFAULT_REFRESH_SECONDS


@click.command(short_help="serve the dashboard on one lake until stopped")
@click.option("--lake", help="s3://bucket or a folder (default: the running stack's)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=DEFAULT_DASHBOARD_PORT, show_default=True)
@click.option("--refresh-seconds", type=float, default=DEFAULT_REFRESH_SECONDS, show_default=True)
def dashboard(lake: str | None, host: str, port: int, refresh_seconds: float) -> int:
    """Serve the dashboard (Streamlit) on host:port, reading the lake through the curated views:
    the running local stack's lake unless --lake names another."""
    from supermarket_cli.dashboard import run

    return run(lake, host, port, refresh_seconds)
