"""The purchase phases a touchpoint belongs to, apart from the map's pydantic models, so the command line can
offer them as choices without building those models at startup (`model/map.py` re-exports it)."""

from enum import StrEnum


class Phase(StrEnum):
    pre_purchase = "pre-purchase"
    purchase = "purchase"
    post_purchase = "post-purchase"
