"""The channels Herald knows, in fan-out order: the one list that model choices, the API's enums
and the registry (``notifications.channels.registry``) are built from.

In-app comes first: the rows of the other channels link to the recipient's in-app copy, so it
must exist by the time they are written. This module imports nothing of Herald's, so models
can read it.
"""

from __future__ import annotations

IN_APP = "in_app"
EMAIL = "email"
PUSH = "push"

# name -> label, in fan-out order
CHANNEL_LABELS: dict[str, str] = {IN_APP: "In-app", EMAIL: "Email", PUSH: "Web push"}

CHANNELS: tuple[str, ...] = tuple(CHANNEL_LABELS)
CHANNEL_CHOICES: list[tuple[str, str]] = list(CHANNEL_LABELS.items())
