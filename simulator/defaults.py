"""The demo's sizes and rates, each written once: the simulator, the Dagster assets, the local
stack and the CLI import them from here. Standard library only, so `supermarket --help` stays
light."""

from datetime import date, timedelta

DEFAULT_STORES = 5
DEFAULT_SKUS = 12_000
DEFAULT_SEED = 0

DEFAULT_TRANSACTIONS = 100_000  # history, in all
DEFAULT_DAYS = 30  # of history, ending yesterday (UTC)
DEFAULT_TRANSACTIONS_PER_DAY = -(-DEFAULT_TRANSACTIONS // DEFAULT_DAYS)  # 3,334
DEFAULT_FILE_TRANSACTIONS = 50_000  # most transactions in one history log file

# HISTORY_DAYS_PER_RUN: days of a backfill in one Dagster run (BackfillPolicy.multi_run). A run
# converts its days on every core, so on one machine a month is one run (one process start).
DEFAULT_HISTORY_DAYS_PER_RUN = 31


def default_history_start(today: date) -> date:
    """HISTORY_START's default, the first day partition: DEFAULT_DAYS days ending yesterday."""
    return today - timedelta(days=DEFAULT_DAYS)


DEFAULT_TRANSACTIONS_PER_SECOND = 50.0  # the live feed
DEFAULT_FILES_PER_SECOND = 2.0
