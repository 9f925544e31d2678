"""docs/configuration.md's tables are generated from the settings' declarations
(stockapp/settings_doc.py): the page must be what the generator writes, and what it writes must
be every setting, its variable and its real default, never a secret."""

import difflib
import os
from pathlib import Path

import pytest
from pydantic import Field

from stockapp import settings_doc
from stockapp.devstack.settings import DevstackSettings, StackSettings, load_devstack_settings
from stockapp.settings import SECTIONS, SHOWN_DEFAULT, Secret, Section, Settings, load_settings
from tests.helpers import REPO

PAGE = REPO / "docs" / "configuration.md"


def test_the_configuration_page_is_what_the_generator_writes():
    page = PAGE.read_text()
    wanted = settings_doc.render(page)
    diff = "".join(
        difflib.unified_diff(
            page.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            "docs/configuration.md",
            "generated",
            n=0,
        )
    )
    assert page == wanted, (
        "docs/configuration.md differs from the settings' declarations: run "
        "`.venv/bin/python -m stockapp.settings_doc --write`\n" + diff
    )


def test_every_setting_is_in_exactly_one_section_in_the_page_s_order():
    """Settings is its sections, fields in SECTIONS' order (the order they are validated in,
    the first wrong one being the one reported); the stack's fields are in no runtime section."""
    in_sections = [name for section in SECTIONS.values() for name in section.model_fields]
    assert in_sections == list(Settings.model_fields)
    assert list(DevstackSettings.model_fields) == in_sections + list(StackSettings.model_fields)
    for section in settings_doc.sections().values():
        for name, field in section.model_fields.items():
            assert field.description, f"{section.__name__}.{name} has no description"


def test_the_page_lists_every_variable_with_its_real_default(monkeypatch):
    """Each default shown is the value a setting has when its variable is unset (read as the
    program reads it), or the SHOWN_DEFAULT text of a default that depends on the machine."""
    for name in list(os.environ):
        if name.startswith("STOCKAPP_") or name == "ALPHA_VANTAGE_API_KEY":
            monkeypatch.delenv(name)
    read = {**load_settings().__dict__, **load_devstack_settings().__dict__}
    page = PAGE.read_text()
    for section in settings_doc.sections().values():
        for name, field in section.model_fields.items():
            shown = settings_doc.shown_default(field, read[name])
            row = f"| `{settings_doc.env_name(section, name)}` | {shown} |"
            assert row in page, row
    assert "| `STOCKAPP_GRACE_SECONDS` | `5` |" in page  # 5.0 s
    assert "| `STOCKAPP_INDICATORS` | `sma:20,sma:50,ema:12" in page
    assert "| `ALPHA_VANTAGE_API_KEY` | empty |" in page  # its own name, no prefix


def test_a_secret_default_is_never_printed_nor_the_environment_read(monkeypatch):
    class Example(Section):
        """An example."""

        token: Secret = Field("a-default-secret-value", description="A token.")
        plain: str = Field("shown", description="A plain value.")

    monkeypatch.setenv("STOCKAPP_PLAIN", "from-the-environment")
    monkeypatch.setenv("STOCKAPP_API_TOKEN", "an-environment-secret-value")
    text = settings_doc.table("Example", Example)
    assert "| `STOCKAPP_TOKEN` | set (hidden) | A token. |" in text
    assert "| `STOCKAPP_PLAIN` | `shown` | A plain value. |" in text
    assert "a-default-secret-value" not in text
    assert "an-environment-secret-value" not in settings_doc.tables()


def test_a_computed_default_must_say_how_it_is_shown():
    class Computed(Section):
        """Computed."""

        place: Path = Field(default_factory=lambda: Path("/here"), description="A place.")

    with pytest.raises(ValueError, match="Computed.place: a computed default needs"):
        settings_doc.table("Computed", Computed)

    class Described(Section):
        """Described."""

        place: Path = Field(
            default_factory=lambda: Path("/here"),
            description="A place.",
            json_schema_extra={SHOWN_DEFAULT: "where it is"},
        )

    assert "| `STOCKAPP_PLACE` | where it is | A place. |" in settings_doc.table("D", Described)


def test_the_markers_are_required_once_each():
    with pytest.raises(ValueError, match="must hold the markers"):
        settings_doc.render("# Configuration\n")
    twice = f"{settings_doc.BEGIN}\n{settings_doc.END}\n" * 2
    with pytest.raises(ValueError, match="must hold the markers"):
        settings_doc.render(twice)
    page = f"before\n{settings_doc.BEGIN}\nA STALE TABLE\n{settings_doc.END}\nafter\n"
    rendered = settings_doc.render(page)
    assert rendered.startswith("before\n") and rendered.endswith(f"{settings_doc.END}\nafter\n")
    assert "A STALE TABLE" not in rendered and "### Kafka" in rendered


def test_the_command_says_whether_the_page_is_up_to_date(monkeypatch, tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "configuration.md"
    page.write_text(f"# C\n{settings_doc.BEGIN}\n{settings_doc.END}\n")
    monkeypatch.setattr(settings_doc, "CHECKOUT", tmp_path)
    assert settings_doc.main([]) == 1
    assert "run `python -m stockapp.settings_doc --write`" in capsys.readouterr().err
    assert settings_doc.main(["--write"]) == 0
    assert settings_doc.main([]) == 0
    assert page.read_text() == settings_doc.render(page.read_text())
