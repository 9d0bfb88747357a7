"""SQLite engine: one file per node, WAL, ``synchronous=FULL``, one writer with group commit.

Every mutation is a job for a single writer thread (:mod:`.worker`), many calls
share one commit, and reads run on a second thread beside it. The store is put
together from one module per concern: the outbox, the inbox (with reconciliation,
retention and the log), the console's reads and the operator records.
"""

from __future__ import annotations

from gateway.store.operations import SharedOperations
from gateway.store.sqlite.offline import SqliteOfflineReader, iter_log_file, read_outbound_file
from gateway.store.sqlite.queues import SqliteQueues
from gateway.store.views import ConsoleViews, OperatorTable

__all__ = ["SqliteOfflineReader", "SqliteStore", "iter_log_file", "read_outbound_file"]


class SqliteStore(SqliteQueues, SharedOperations, ConsoleViews, OperatorTable):
    """The :class:`~gateway.store.NodeStore` on one SQLite file."""
