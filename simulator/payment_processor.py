"""The live feed: a long-running producer of small NDJSON logs under raw/incoming/dt=.../.

Several instances run at once without id clashes: each names itself with a random token
(or --producer-id) that prefixes every transaction id and file name it writes.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from lake_contract import layout
from simulator.baskets import draw_baskets, sequence_ids, to_ndjson
from simulator.defaults import (
    DEFAULT_FILES_PER_SECOND,
    DEFAULT_SEED,
    DEFAULT_SKUS,
    DEFAULT_STORES,
    DEFAULT_TRANSACTIONS_PER_SECOND,
)
from simulator.reference import build_reference
from simulator.sink import open_sink

logger = logging.getLogger("supermarket.payment_processor")


@dataclass(frozen=True)
class FeedOptions:
    location: str  # s3://bucket[/prefix] or a folder
    transactions_per_second: float = DEFAULT_TRANSACTIONS_PER_SECOND
    files_per_second: float = DEFAULT_FILES_PER_SECOND
    seed: int = DEFAULT_SEED  # of the reference data, so prices match the lake's skus
    stores: int = DEFAULT_STORES
    skus: int = DEFAULT_SKUS
    producer_id: str | None = None


@dataclass
class FeedStats:
    files: int = 0
    transactions: int = 0


class PaymentProcessor:
    def __init__(self, options: FeedOptions) -> None:
        if options.transactions_per_second <= 0 or options.files_per_second <= 0:
            raise ValueError("rates must be positive")
        self.options = options
        self.producer_id = options.producer_id or os.urandom(5).hex()
        self.reference = build_reference(options.stores, options.skus, options.seed)
        self.stats = FeedStats()
        self._rng = np.random.default_rng(list(self.producer_id.encode()))
        self._sink = open_sink(options.location)

    def write_file(self, now: datetime | None = None) -> str:
        """Writes one log of the baskets rung up since the previous one; returns its key."""
        now = now or datetime.now(UTC)
        mean = self.options.transactions_per_second / self.options.files_per_second
        count = max(1, int(self._rng.poisson(mean)))
        window_ms = int(1000 / self.options.files_per_second)
        now_ms = int(now.timestamp() * 1000)
        times = np.sort(now_ms - self._rng.integers(0, window_ms, count))
        prefix = f"P{self.producer_id}-"
        ids = sequence_ids(prefix, self.stats.transactions, count, 10)
        data = to_ndjson(draw_baskets(self._rng, self.reference, ids, times))
        name = f"{self.producer_id}-{self.stats.files:08d}.ndjson"
        key = f"{layout.day_prefix(layout.RAW_INCOMING, now.date())}{name}"
        self._sink.put(key, data)
        self.stats.files += 1
        self.stats.transactions += count
        return key

    def run(self, stop: threading.Event, on_file: Callable[[str], None] | None = None) -> FeedStats:
        """Writes files on a fixed schedule until stop is set; never leaves a file half-done."""
        interval = 1.0 / self.options.files_per_second
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                key = self.write_file()
            except Exception:  # the sink is down: report, wait, carry on (ids are not spent)
                logger.exception("payment processor %s could not write", self.producer_id)
                stop.wait(1.0)
                next_at = time.monotonic()
                continue
            if on_file:
                on_file(key)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (slow sink): restart the schedule, don't burst
                next_at = time.monotonic()
            else:
                stop.wait(delay)
        return self.stats
