"""PostgreSQL engine (asyncpg): one schema per node, shared by any number of replicas.

The semantics are the SQLite engine's, method by method; what differs is that
several processes may write the same schema at once.

* **One chain, many writers.** Every write runs in a batch: a writer task takes
  all calls waiting in its queue, runs each in its own savepoint of one
  transaction, and commits once (group commit, as in the SQLite engine). The
  batch starts by locking the one row of ``log_head`` (``SELECT … FOR UPDATE``),
  so batches of all replicas are serialised: each reads the head, chains its
  entries with :mod:`gateway.translog` (the same canonical bytes as SQLite, so
  ``verify_chain`` holds for both engines), inserts them and moves the head in
  the transaction that holds the rows they describe. Taking the lock first, before
  any row is touched, keeps writers from deadlocking on each other.
* **Claims.** ``due_outbound`` hands rows to one replica at a time, with a lease
  (:mod:`.queues`).

Driver and socket errors never leave this package: they become
:class:`~gateway.errors.StoreUnavailable` (``raise … from exc``).
"""

from __future__ import annotations

from gateway.store.operations import SharedOperations
from gateway.store.postgres.offline import PostgresOfflineReader, iter_log_postgres
from gateway.store.postgres.queues import PostgresQueues
from gateway.store.postgres.schema import default_schema, valid_schema_name
from gateway.store.views import ConsoleViews, OperatorTable

__all__ = [
    "PostgresOfflineReader",
    "PostgresStore",
    "default_schema",
    "iter_log_postgres",
    "valid_schema_name",
]


class PostgresStore(PostgresQueues, SharedOperations, ConsoleViews, OperatorTable):
    """The :class:`~gateway.store.NodeStore` on one PostgreSQL schema, safe for replicas."""
