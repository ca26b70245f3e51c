"""`supermarket cost`: the monthly AWS cost of this design at a volume, beside the alternatives."""

from pathlib import Path

import click

from supermarket_cli.commands.options import POSITIVE


@click.command(short_help="the monthly AWS cost at a volume, line by line")
@click.option("--transactions-per-day", type=float, required=True, help="transactions a day")
@click.option(
    "--stores",
    type=POSITIVE,
    default=5,
    show_default=True,
    help="stores in the chain, each uploading its own logs",
)
@click.option(
    "--days-retained",
    type=float,
    default=365,
    show_default=True,
    help="days of transactions the lake holds",
)
@click.option(
    "--refreshes-per-hour",
    type=float,
    default=12,
    show_default=True,
    help="dashboard refreshes an hour, all day",
)
@click.option(
    "--upload-seconds",
    type=float,
    default=10,
    show_default=True,
    help="how often each store uploads its log while it sells",
)
@click.option("--measure", is_flag=True, help="measure the inputs again first (minutes)")
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    help="a JSON file of prices that replace the table's",
)
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="the measured inputs file (default: the checked-in one)",
)
def cost(
    transactions_per_day: float,
    stores: int,
    days_retained: float,
    refreshes_per_hour: float,
    upload_seconds: float,
    measure: bool,
    prices: Path | None,
    inputs_file: Path | None,
) -> None:
    """Print the monthly AWS cost of this design (infra/template.yaml) at a volume, line by
    line, from the measured inputs and the price table, beside a scheduled Glue job and
    Firehose into Iceberg, with each one's delay to queryable."""
    from supermarket_cost.deployment import load_deployment
    from supermarket_cost.inputs import INPUTS_FILE, load_inputs, save_inputs
    from supermarket_cost.model import Workload, estimate
    from supermarket_cost.prices import load_prices
    from supermarket_cost.report import render

    workload = Workload(
        transactions_per_day, stores, days_retained, refreshes_per_hour, upload_seconds
    )
    table = load_prices(prices)
    path = inputs_file or INPUTS_FILE
    if measure:
        from supermarket_cost.measure import measure as run_measure

        print(f"wrote {save_inputs(run_measure(), path)}")
    inputs = load_inputs(path)
    print(render(estimate(inputs, load_deployment(), workload, table), inputs, table))
