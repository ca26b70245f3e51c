"""An estimate as text: this design line by line, then the alternatives beside it."""

from supermarket_cost.inputs import MeasuredInputs
from supermarket_cost.model import Estimate, Line, Option
from supermarket_cost.prices import Prices


def _quantity(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


def _lines(lines: list[Line]) -> list[str]:
    width = max(len(f"{line.service}: {line.item}") for line in lines)
    return [
        f"  {f'{line.service}: {line.item}':<{width}}  {_quantity(line.quantity):>15} "
        f"{line.unit:<11} ${line.monthly:>10,.2f}"
        for line in lines
    ]


def _total(option: Option) -> str:
    return f"  {'total a month':<40} ${option.monthly:,.2f}"


def render(estimate: Estimate, inputs: MeasuredInputs, prices: Prices) -> str:
    w = estimate.workload
    d = estimate.derived
    machine = inputs.machine
    out = [
        f"{w.transactions_per_day:,.0f} transactions a day, {w.stores} stores (a log each every "
        f"{w.upload_seconds:g} s while selling), {w.days_retained:,.0f} days retained, "
        f"{w.refreshes_per_hour:g} dashboard refreshes an hour",
        f"prices: {prices.region}, {prices.date}; measured inputs: {inputs.measured_at} on "
        f"{machine.get('platform', '?')} (load {machine.get('load_average_1m', '?')})",
        f"{d['files_per_day']:,.0f} logs a day of {d['transactions_per_file']:,.1f} transactions; "
        f"{d['batches_per_day']:,.0f} Lambda batches of {d['files_per_batch']:.1f} logs "
        f"(measured peak RSS {inputs.batches.peak_rss_mb:,.0f} MB); "
        f"data files a day {d['data_files_per_day_before_compaction']:,.0f} before compaction, "
        f"{d['data_files_per_day_after_compaction']:,.0f} after, Iceberg metadata objects "
        f"written a day {d['metadata_objects_written_per_day']:,.0f} (kept: "
        f"{inputs.storage.metadata_bytes / 1e6:,.1f} MB), compaction rewriting "
        f"{d['compaction_mb_rewritten_per_day']:,.0f} MB a day; a dashboard refresh scans "
        f"{d['athena_bytes_scanned_per_refresh'] / 1e6:,.1f} MB, billed "
        f"{d['athena_bytes_billed_per_refresh'] / 1e6:,.1f} MB",
        "",
        f"{estimate.design.name}: delay to queryable {estimate.design.delay}",
        *_lines(estimate.design.lines),
        _total(estimate.design),
    ]
    if estimate.not_counted:
        out += ["", "not in the total:", *_lines(estimate.not_counted)]
    if estimate.one_off:
        out += ["", "once:", *_lines(estimate.one_off)]
    for option in estimate.alternatives:
        out += [
            "",
            f"{option.name}: delay to queryable {option.delay}",
            *_lines(option.lines),
            _total(option),
        ]
    out += ["", "side by side:"]
    for option in [estimate.design, *estimate.alternatives]:
        out.append(f"  {option.name:<52} ${option.monthly:>10,.2f} a month   {option.delay}")
    return "\n".join(out)
