"""A command that ends with a one-line reason prints nothing after it: a refused probe
connection's unread failure is not logged with a traceback when it is collected."""

import asyncio
import gc
import logging
import ssl

from stockapp.connectivity import quiet_refused_connections


def dropped_failure(error: BaseException) -> None:
    async def run() -> None:
        quiet_refused_connections()
        future = asyncio.get_running_loop().create_future()
        future.set_exception(error)
        del future  # never retrieved
        gc.collect()

    asyncio.run(run())


def test_a_refused_connection_is_not_logged_and_other_errors_still_are(caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        dropped_failure(ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] bad certificate"))
        dropped_failure(ConnectionResetError("reset"))
        assert not caplog.records
        dropped_failure(ValueError("a bug"))
    assert ["never retrieved" in r.getMessage() for r in caplog.records] == [True]
