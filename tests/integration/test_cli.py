"""The commands a user types: actionable one-line errors, a worker that serves HTTP."""

import json
import os
import signal
import subprocess

from tests.helpers import BIN, free_port, run, wait_http


def _one_line_error(result, *needles):
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_migrate_with_wrong_cassandra_port(stack):
    port = free_port()
    result = run(
        [str(BIN / "stockapp"), "db", "migrate"], env={"STOCKAPP_CASSANDRA_PORT": str(port)}
    )
    _one_line_error(result, f"127.0.0.1:{port}", "make up", "STOCKAPP_CASSANDRA_PORT")


def test_wrong_local_data_centre_names_the_ones_there_are(stack):
    result = run([str(BIN / "stockapp"), "check"], env={"STOCKAPP_CASSANDRA_LOCAL_DC": "dc9"})
    _one_line_error(result, "STOCKAPP_CASSANDRA_LOCAL_DC='dc9'", "it has datacenter1")


def test_worker_on_a_keyspace_that_lacks_a_migration(stack, unique):
    from stockapp.db.migrate import migrate
    from stockapp.sinks.cassandra_session import connect

    keyspace = f"stockapp_old_{unique}"
    migrate(stack, keyspace=keyspace)
    cluster, session = connect(stack, keyspace=keyspace)
    try:
        session.execute("DELETE FROM schema_migrations WHERE version = 4")
        result = run(
            [str(BIN / "stockapp"), "worker"],
            env={"STOCKAPP_CASSANDRA_KEYSPACE": keyspace},
            timeout=60,
        )
        _one_line_error(result, keyspace, "0004_candle_buckets.cql", "stockapp db migrate")
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()


def test_a_new_indicator_needs_its_column_and_migrate_adds_it(stack, unique):
    """STOCKAPP_INDICATORS names an output the candles table has no column for: the worker
    refuses in one line; `stockapp db migrate` with the same setting adds the columns (once),
    and the rows stored before read them as null."""
    from stockapp.db.migrate import migrate
    from stockapp.sinks.cassandra_session import connect

    keyspace = f"stockapp_ind_{unique}"
    migrate(stack, keyspace=keyspace)
    env = {"STOCKAPP_CASSANDRA_KEYSPACE": keyspace, "STOCKAPP_INDICATORS": "sma:20,bb:10:2.5"}
    cluster, session = connect(stack, keyspace=keyspace)
    try:
        session.execute(
            "INSERT INTO candles (symbol, interval, bucket, start, close, sma_20) "
            "VALUES ('OLD', '1m', 0, 0, 1.5, 1.25)"
        )
        result = run([str(BIN / "stockapp"), "worker"], env=env, timeout=60)
        _one_line_error(
            result,
            f"{keyspace}.candles has no column for indicator output(s) bb_upper_10_2p5, "
            "bb_middle_10_2p5, bb_lower_10_2p5",
            "run `stockapp db migrate` with the same STOCKAPP_INDICATORS",
        )
        first = run([str(BIN / "stockapp"), "db", "migrate"], env=env, timeout=120)
        assert first.returncode == 0, first.stderr
        assert (
            "added indicator columns to candles: bb_upper_10_2p5, bb_middle_10_2p5, "
            "bb_lower_10_2p5" in first.stdout
        )
        again = run([str(BIN / "stockapp"), "db", "migrate"], env=env, timeout=120)
        assert again.returncode == 0 and "added" not in again.stdout, again
        row = session.execute(
            "SELECT sma_20, bb_upper_10_2p5 FROM candles WHERE symbol = 'OLD' AND interval = '1m' "
            "AND bucket = 0"
        ).one()
        assert (row.sma_20, row.bb_upper_10_2p5) == (1.25, None)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()


def test_worker_without_kafka(stack):
    port = free_port()
    result = run(
        [str(BIN / "stockapp"), "worker"],
        env={"STOCKAPP_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"},
        timeout=60,
    )
    _one_line_error(result, f"127.0.0.1:{port}", "STOCKAPP_KAFKA_BOOTSTRAP")


def test_bad_setting_value():
    result = run([str(BIN / "stockapp"), "check"], env={"STOCKAPP_WEB_PORT": "http"})
    _one_line_error(result, "STOCKAPP_WEB_PORT='http' is not an integer")


def test_check_reports_both_servers(stack):
    result = run([str(BIN / "stockapp"), "check"])
    assert result.returncode == 0, result.stderr
    assert "kafka: 1 broker(s)" in result.stdout
    assert "cassandra: 5.0." in result.stdout


def test_stack_up_again_is_a_no_op(stack):
    result = run([str(BIN / "python"), "-m", "stockapp.devstack", "up"])
    assert result.returncode == 0, result.stderr
    assert "starting" not in result.stdout
    assert result.stdout.count("already") == 2


def test_worker_without_schema(stack, unique):
    result = run(
        [str(BIN / "stockapp"), "worker"],
        env={"STOCKAPP_CASSANDRA_KEYSPACE": f"missing_{unique}"},
        timeout=60,
    )
    _one_line_error(result, f"missing_{unique}", "stockapp db migrate")


def test_worker_serves_health(stack, test_keyspace, unique, tmp_path):
    port = free_port()
    env = {
        "STOCKAPP_WEB_PORT": str(port),
        "STOCKAPP_APP_ID": f"stockapp-test-{unique}",
        "STOCKAPP_DATA_DIR": str(tmp_path),
        "STOCKAPP_CASSANDRA_KEYSPACE": test_keyspace,
        "STOCKAPP_TOPIC_QUOTES": f"test.{unique}.quotes",
    }

    proc = subprocess.Popen(
        [str(BIN / "stockapp"), "worker"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = wait_http(f"http://127.0.0.1:{port}/health", timeout=90)
        assert json.loads(body) == {"status": "ok", "app": f"stockapp-test-{unique}"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
