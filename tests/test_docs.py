"""Every command has help and a docs section; every setting, map field and CSV column is documented."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from tests.conftest import ROOT
from touchlens.cli import app
from touchlens.model import map as model
from touchlens.model.inventory import COLUMNS
from touchlens.store.settings import documented_settings

DOCS = ROOT / "docs"


def _commands(group: Any, prefix: str = "touchlens") -> list[tuple[str, Any]]:
    found = []
    for name, command in getattr(group, "commands", {}).items():
        path = f"{prefix} {name}"
        found.append((path, command))
        found += _commands(command, path)
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_there_are_commands_to_check() -> None:
    assert {path for path, _ in COMMANDS} >= {"touchlens init", "touchlens map import", "touchlens matrix"}


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_and_a_docs_section(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"{path} has no help text"
    for param in command.params:
        assert (getattr(param, "help", None) or "").strip(), f"{path} {param.opts[0]} has no help text"
    text = (DOCS / "cli.md").read_text()
    assert f"### `{path}`" in text, f"docs/cli.md has no section for {path}"
    start = text.index(f"### `{path}`")
    end = text.find("\n### ", start + 1)
    section = text[start : end if end > 0 else None]
    options = [p.opts[0] for p in command.params if p.opts[0].startswith("--")]
    assert [o for o in options if o not in section] == [], f"docs/cli.md's {path} section misses options"


@pytest.mark.parametrize("name", [s[0] for s in documented_settings()])
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name}`" in (DOCS / "settings.md").read_text()


MODELS = [m for m in vars(model).values() if isinstance(m, type) and issubclass(m, BaseModel) and m is not model.Item]


@pytest.mark.parametrize("cls", MODELS, ids=lambda m: m.__name__)
def test_every_map_field_is_documented(cls: type[BaseModel]) -> None:
    text = (DOCS / "map-format.md").read_text()
    for name, info in cls.model_fields.items():
        assert f"`{info.alias or name}`" in text, f"{cls.__name__}.{name} is not in docs/map-format.md"


def test_every_csv_column_is_documented() -> None:
    text = (DOCS / "map-format.md").read_text()
    missing = [c for c in COLUMNS if f"`{c}`" not in text]
    assert missing == []


def test_the_readme_starts_with_what_it_is_then_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("# touchlens")
    assert readme.index("make demo") < readme.index("make test")
    assert "docs/" in readme
