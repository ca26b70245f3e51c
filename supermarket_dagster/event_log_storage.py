"""The local instance's event log: Dagster's own sqlite storage, keeping its connections open.

Dagster 1.13's SqliteEventLogStorage creates an engine and opens a connection for every read and
write, and closes it after; closing a WAL database's last connection checkpoints its log to
disk. Each event a run stores costs three of those (its run's database, the index, the check or
asset tables): 210 day-check results of a 30-day history run took 4.7 s, 22 ms each; with the
engines kept, 1.1 s. This class keeps one engine, and so its pooled connection, per database: the
index and the most recently used run databases, a bounded number (a webserver reads many runs).
Everything else is Dagster's: the same files, schema, migrations and locking; the production
instance uses Postgres and does not need it.

It overrides `_connect`, a private method, so it is tied to the pinned Dagster version; the
tests run every Dagster process of the stack on it.
"""

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

ENGINES_KEPT = 16  # the index and the 15 run databases used last


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with an engine kept per database (see the module doc)."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> "PooledSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As Dagster's: one connection at a time per process (its lock), the database created on
        # first use; but the engine, with its connection pool, is kept instead of disposed.
        with self._db_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
            self._engines[shard] = engine  # the most recently used last
            while len(self._engines) > ENGINES_KEPT:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # no connection kept to a database file wipe deletes
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
