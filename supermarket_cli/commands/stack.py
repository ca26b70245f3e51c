"""`supermarket up`, `status` and `down`: the whole local stack (see supermarket_cli/stack/)."""

import sys
from typing import Any

import click

from supermarket_cli.commands.options import COUNT, POSITIVE


def _stack_config(**overrides: Any) -> Any:  # a StackConfig: its import stays in the command
    from supermarket_cli.stack.config import from_environment

    config = from_environment().with_overrides(**overrides)
    return config.with_overrides(state_dir=config.state_dir.resolve())


@click.command(short_help="start the whole local stack and supervise it until Ctrl-C")
@click.option("--reset", is_flag=True, help="forget the kept lake and Dagster state")
@click.option("--detach", is_flag=True, help="run in the background")
@click.option(
    "--no-load",
    "load",
    flag_value=False,
    default=True,
    help="skip loading reference data and history",
)
@click.option(
    "--aws",
    "use_aws",
    is_flag=True,
    help="no moto: provision and run against the AWS account boto3 finds",
)
@click.option("--tps", type=float, help="live transactions per second (FEED_TPS)")
@click.option("--fps", type=float, help="live files per second (FEED_FPS)")
@click.option("--history-days", type=COUNT, help="days of history (HISTORY_DAYS)")
@click.option(
    "--history-per-day",
    type=COUNT,
    help="historical transactions a day (HISTORY_TRANSACTIONS_PER_DAY)",
)
@click.option("--stores", type=POSITIVE, help="stores (SUPERMARKET_STORES)")
@click.option("--skus", type=POSITIVE, help="SKUs (SUPERMARKET_SKUS)")
def up(reset: bool, detach: bool, load: bool, use_aws: bool, **overrides: Any) -> int:
    """Start the whole local stack and supervise it until Ctrl-C.

    Settings come from environment variables (see README); flags override them."""
    from supermarket_cli.stack import up as stack

    config = _stack_config(**overrides)
    if detach:
        argv = [a for a in sys.argv[2:] if a != "--detach"]
        return stack.detach(config, argv)
    return stack.up(config, reset=reset, load=load, use_aws=use_aws)


@click.command(short_help="show a stack started with `up --detach`")
def status() -> int:
    """Show the processes, URLs and latest status line of a stack started with `up --detach`;
    exit code 3 if none runs."""
    from supermarket_cli.stack import up as stack

    return stack.status(_stack_config())


@click.command(short_help="stop a stack started with `up --detach`")
def down() -> int:
    """Stop a stack started with `up --detach`, in order, as Ctrl-C does."""
    from supermarket_cli.stack import up as stack

    return stack.down(_stack_config())
