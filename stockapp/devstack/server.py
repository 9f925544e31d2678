"""What the stack needs to know about one server: where it lives, how to start and probe it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stockapp.devstack.checkout import stack_files
from stockapp.devstack.settings import DevstackSettings
from stockapp.settings import Settings


def conf_dir() -> Path:
    """The servers' config templates (the repository's stack/conf)."""
    return stack_files() / "conf"


@dataclass(frozen=True)
class Server:
    name: str
    settings: DevstackSettings
    # Returns the command line; may write config files and format storage first.
    prepare: Callable[[Server, str], list[str]]
    # Raises ConnectivityError until the server answers its protocol.
    probe: Callable[[Settings, float], object]  # (settings, timeout in seconds)
    port: int

    @property
    def home(self) -> Path:
        return self.settings.stack_dir / self.name

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"

    def render(self, template: str, target: Path, **values: object) -> Path:
        text = (conf_dir() / template).read_text()
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target
