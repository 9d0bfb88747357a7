"""The console's pages and API, one module per page; each page object serves both its
HTML and its JSON routes (the names in :data:`~gateway.console.routes.ROUTES`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.console.pages.dead_letters import DeadLetterPages
from gateway.console.pages.health import HealthPages
from gateway.console.pages.login import LoginPages
from gateway.console.pages.overview import OverviewPages
from gateway.console.pages.record import RecordPages
from gateway.console.pages.tail import TailPages
from gateway.console.pages.transfers import TransferPages

if TYPE_CHECKING:
    from gateway.console.context import PageContext

__all__ = [
    "DeadLetterPages",
    "HealthPages",
    "LoginPages",
    "OverviewPages",
    "RecordPages",
    "TailPages",
    "TransferPages",
    "page_objects",
]


def page_objects(console: PageContext) -> list[object]:
    return [
        page(console)
        for page in (
            HealthPages,
            LoginPages,
            OverviewPages,
            TransferPages,
            RecordPages,
            TailPages,
            DeadLetterPages,
        )
    ]
