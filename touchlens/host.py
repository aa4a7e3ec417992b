"""What the facade's parts (surveys, cases, alerts, design, contacts) need of the `Workspace` they serve.

`Workspace` imports those parts, so they cannot import it back: they take any object with these members, which
`Workspace` has. One protocol for all of them, so a part that grows a need says it here, once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import duckdb
    import sqlalchemy as sa

    from touchlens.cases import Cases
    from touchlens.model.map import TouchpointMap
    from touchlens.store.settings import Settings
    from touchlens.surveys import Surveys


class Host(Protocol):
    @property
    def root(self) -> Path: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def cases(self) -> Cases: ...
    @property
    def surveys(self) -> Surveys: ...
    def meta_engine(self) -> sa.Engine: ...
    def add_change(self, touchpoint: str, when: date, note: str, *, actor: str = "library") -> int: ...
    def map_or_empty(self) -> TouchpointMap: ...
    def stored_id(self, customer_id: str) -> str: ...
    def events(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...
    def health_report(self) -> list[dict[str, Any]]: ...
    def trends(self, period: str = "week", touchpoints: tuple[str, ...] = ()) -> dict[str, Any]: ...
    def insights(self, sections: tuple[str, ...] = ..., samples: int = 0) -> Any: ...
