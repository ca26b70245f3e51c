"""Settings every test shares, applied before any test module imports the code under test."""

import os

# Tests use fixed days from 2025 on; the day partitions are fixed when supermarket_dagster is
# first imported (and in every Dagster server a test starts, which inherits the environment).
os.environ.setdefault("HISTORY_START", "2025-01-01")
