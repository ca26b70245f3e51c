"""The demo's sizes and rates, each written once: the simulator, the Dagster assets, the local
stack and the CLI import them from here. Standard library only, so `supermarket --help` stays
light."""

DEFAULT_STORES = 5
DEFAULT_SKUS = 12_000
DEFAULT_SEED = 0

DEFAULT_TRANSACTIONS = 100_000  # history, in all
DEFAULT_DAYS = 30  # of history, ending yesterday (UTC)
DEFAULT_TRANSACTIONS_PER_DAY = -(-DEFAULT_TRANSACTIONS // DEFAULT_DAYS)  # 3,334
DEFAULT_FILE_TRANSACTIONS = 50_000  # most transactions in one history log file

DEFAULT_TRANSACTIONS_PER_SECOND = 50.0  # the live feed
DEFAULT_FILES_PER_SECOND = 2.0
