import pytest

from stockapp.db.migrate import Migration, load_migrations, validate_keyspace
from stockapp.errors import StockappError


def test_migrations_are_numbered_in_order():
    migrations = load_migrations()
    assert migrations, "no migration files shipped"
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))


def test_every_statement_is_idempotent():
    for migration in load_migrations():
        for statement in migration.statements():
            assert "IF NOT EXISTS" in statement.upper() or "IF EXISTS" in statement.upper(), (
                migration.name,
                statement[:60],
            )


def test_statements_split_and_comments_dropped():
    m = Migration(
        1,
        "0001_x.cql",
        "-- a comment; with a semicolon\nCREATE TABLE a (x int);\n\nCREATE TABLE b (y int);\n",
    )
    assert m.statements() == ["CREATE TABLE a (x int)", "CREATE TABLE b (y int)"]


def test_checksum_changes_with_text():
    assert Migration(1, "a", "x").checksum != Migration(1, "a", "y").checksum


def test_misnamed_file_is_rejected(tmp_path):
    (tmp_path / "initial.cql").write_text("")
    with pytest.raises(StockappError, match="NNNN_name.cql"):
        load_migrations(tmp_path)


@pytest.mark.parametrize("name", ["stock data", "x;DROP KEYSPACE y", "1abc", "", "a" * 49])
def test_bad_keyspace_names_are_refused(name):
    with pytest.raises(StockappError, match="not a valid keyspace name"):
        validate_keyspace(name)
