"""The local stack is a tool of a stockapp checkout: the servers' poms and config templates are
the repository's ``stack/``, which no wheel carries. An installed stockapp is pointed at Kafka
and Cassandra servers of the user's own (README, "Using your own Kafka and Cassandra")."""

from __future__ import annotations

from pathlib import Path

from stockapp.errors import StockappError
from stockapp.settings import CHECKOUT

NOT_A_CHECKOUT = (
    "the local stack runs from a stockapp checkout (it needs the repository's stack/ folder, "
    "which an installed package does not have): point STOCKAPP_KAFKA_BOOTSTRAP and "
    "STOCKAPP_CASSANDRA_HOSTS at your own servers instead"
)


def stack_files() -> Path:
    """The repository's ``stack/``: one poms folder per server and ``conf/``'s templates."""
    if CHECKOUT is None or not (CHECKOUT / "stack").is_dir():
        raise StockappError(NOT_A_CHECKOUT)
    return CHECKOUT / "stack"
