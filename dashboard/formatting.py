"""Small presentation helpers shared by the account pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.timesince import timesince


def ago(moment: datetime | None, *, now: datetime | None = None) -> str:
    """``"just now"``, ``"5 minutes ago"``, ``"2 days, 3 hours ago"``; ``""`` for None."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now)} ago"
