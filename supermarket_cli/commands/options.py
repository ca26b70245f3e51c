"""Option types and options shared by several commands, with the messages the CLI has always
given."""

import signal
import threading
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import click

from simulator.defaults import DEFAULT_SEED, DEFAULT_SKUS, DEFAULT_STORES

F = TypeVar("F", bound=Callable[..., Any])


class Count(click.ParamType):
    """A whole number (10_000 reads as 10000) of at least `least`."""

    name = "integer"

    def __init__(self, least: int) -> None:
        self.least = least

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value).replace("_", ""))
            except ValueError:
                self.fail(f"expected a whole number, got {value!r}", param, ctx)
        if number < self.least:
            need = "must not be negative" if self.least == 0 else f"must be at least {self.least}"
            self.fail(f"{need}, got {number}", param, ctx)
        return number


class Day(click.ParamType):
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"expected a date like 2026-01-31, got {value!r}", param, ctx)


POSITIVE = Count(1)
COUNT = Count(0)
DAY = Day()


def catalog_options(command: F) -> F:
    """The stores and SKUs to draw from: the same flags give the same reference data."""
    command = click.option("--skus", type=POSITIVE, default=DEFAULT_SKUS)(command)
    command = click.option("--stores", type=POSITIVE, default=DEFAULT_STORES)(command)
    return click.option(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"same seed, same data (default {DEFAULT_SEED})",
    )(command)


def stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM ask a long-running command to stop after the work in hand, never in
    the middle."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
