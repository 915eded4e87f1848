"""Content negotiation: DRF's, except that a ``?format=`` naming no renderer of the view is ignored.

DRF reads ``?format=`` (``URL_FORMAT_OVERRIDE``) on every view and answers 404 when the view has no
renderer of that format, so ``GET /api/v1/tenant?format=csv`` said the tenant does not exist. A
query parameter the API does not define is ignored everywhere else, so here too; where a view
does offer the format (the OpenAPI schema's ``?format=json``), it still picks the renderer.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class ContentNegotiation(DefaultContentNegotiation):
    def filter_renderers(
        self,
        renderers: Iterable[BaseRenderer],
        format: str,  # noqa: A002 -- DRF's name
    ) -> list[BaseRenderer]:
        offered = list(renderers)
        return [renderer for renderer in offered if renderer.format == format] or offered
