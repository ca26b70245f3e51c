"""`supermarket fault-proxy`: an S3 proxy on loopback that faults a share of the calls it
passes to the S3 behind it, for soaks; stops on SIGINT or SIGTERM."""

import click

from supermarket_cli.commands.options import stop_on_signals

KINDS_HELP = "slowdown, internal_error, reset, reset_mid_response, delay"  # faults.FAULTS


@click.command(short_help="an S3 proxy on loopback that faults a share of calls")
@click.option(
    "--upstream", required=True, help="the S3 behind it, e.g. moto's http://127.0.0.1:5000"
)
@click.option("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
@click.option("--port", type=int, default=0, help="port (default 0: any free port, printed)")
@click.option("--rate", type=float, default=0.2, help="share of calls faulted (default 0.2)")
@click.option("--faults", "kinds", default="", help=f"comma-separated, of: {KINDS_HELP} (all)")
@click.option("--delay", type=float, default=0.5, help="seconds a delayed answer waits")
@click.option("--max-in-a-row", type=int, default=None, help="cap on failing faults in a row")
@click.option("--seed", type=int, default=None, help="makes the faults repeatable")
def fault_proxy(
    upstream: str,
    host: str,
    port: int,
    rate: float,
    kinds: str,
    delay: float,
    max_in_a_row: int | None,
    seed: int | None,
) -> None:
    """Pass S3 calls to --upstream, answering a share of them with 503 SlowDown or 500
    InternalError, resetting the connection, or delaying the answer; the rest pass unchanged.
    GET /_fault-proxy/stats answers its counts."""
    from supermarket_cli.faults import FAULTS, FaultPlan, FaultProxy, serve

    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip()) or FAULTS
    try:
        plan = FaultPlan(rate, chosen, delay, max_in_a_row, seed)
        proxy = FaultProxy(upstream, plan, host, port)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    stats = serve(proxy, stop_on_signals())
    print(f"fault-proxy stopped: {stats.calls} calls, {stats.forwarded} forwarded, "
          f"faults {dict(stats.faults)}", flush=True)  # fmt: skip
