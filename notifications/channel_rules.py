"""Channel rules: delayed channels and escalation ("notify in-app now; email only if it is still
unread in 15 minutes").

A type and a send may carry ``{"<channel>": {"delay_seconds": 0..604800, "only_if_unread":
bool}}``; a send's rule for a channel replaces its type's for that channel, whole. One check
(``channel_rules_clean``) serves the API's serializers and the dashboard's type editor; the
fan-out (``services.deliveries.delivery_hold``) reads the effective rule of each channel.

The in-app copy is always written at the send: ``in_app`` takes no rule. A rule for a channel the
send does not use is kept and has no effect. ``only_if_unread`` on a send without an in-app copy
(or for a recipient who opted out of in-app) delivers as if unread: there is nothing to read.

No imports from this app's models: the serializers, the services and the dashboard read this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herald.domain import Invalid
from notifications.channels.names import CHANNEL_LABELS, IN_APP

MAX_DELAY_SECONDS = 7 * 86400
RULE_FIELDS = ("delay_seconds", "only_if_unread")
# The channels a rule may name: every channel whose deliveries wait in the outbox.
RULED_CHANNELS = tuple(name for name in CHANNEL_LABELS if name != IN_APP)
EXAMPLE = '{"delay_seconds": 900, "only_if_unread": true}'
IN_APP_REFUSED = (
    "The in-app notification is created at once: in_app takes no rule (delay another channel)."
)


@dataclass(frozen=True)
class ChannelRule:
    delay_seconds: int = 0
    only_if_unread: bool = False

    @property
    def applies(self) -> bool:
        """Whether the rule changes anything (a row without one goes out at once)."""
        return self.delay_seconds > 0 or self.only_if_unread


NO_RULE = ChannelRule()


def channel_rules_clean(rules: Any, *, field: str = "channel_rules") -> dict[str, dict[str, Any]]:
    """``rules`` as stored: each named channel's rule with both fields (defaults filled in).
    Raises ``Invalid`` with every problem at once, keyed ``channel_rules`` (not an object),
    ``channel_rules.<channel>`` (an unknown channel, ``in_app``, a rule that is not an object)
    or ``channel_rules.<channel>.<field>`` (an unknown field, a delay that is not an integer
    from 0 to 604800, an ``only_if_unread`` that is not a boolean)."""
    if not isinstance(rules, Mapping):
        raise Invalid(
            "Invalid channel rules.",
            details={field: ['Give an object keyed by channel, e.g. {"email": {...}}.']},
        )
    details: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, Any]] = {}
    for channel, rule in rules.items():
        where = f"{field}.{channel}"
        if channel == IN_APP:
            details[where] = [IN_APP_REFUSED]
            continue
        if channel not in RULED_CHANNELS:
            details[where] = [f"Not a channel: use {', '.join(RULED_CHANNELS)}."]
            continue
        if not isinstance(rule, Mapping):
            details[where] = [
                'Give an object, e.g. {"delay_seconds": 900, "only_if_unread": true}.'
            ]
            continue
        for name in sorted(set(rule) - set(RULE_FIELDS), key=str):
            details[f"{where}.{name}"] = [f"Unknown field: use {', '.join(RULE_FIELDS)}."]
        delay = rule.get("delay_seconds", 0)
        if isinstance(delay, bool) or not isinstance(delay, int):
            details[f"{where}.delay_seconds"] = ["Give a whole number of seconds."]
        elif not 0 <= delay <= MAX_DELAY_SECONDS:
            details[f"{where}.delay_seconds"] = [
                f"Give 0 to {MAX_DELAY_SECONDS} seconds (at most 7 days)."
            ]
        only_if_unread = rule.get("only_if_unread", False)
        if not isinstance(only_if_unread, bool):
            details[f"{where}.only_if_unread"] = ["Give true or false."]
        cleaned[channel] = {"delay_seconds": delay, "only_if_unread": only_if_unread}
    if details:
        raise Invalid("Some channel rules are not valid.", details=details)
    return cleaned


def channel_rule(
    *, type_rules: Mapping[str, Any], send_rules: Mapping[str, Any], channel: str
) -> ChannelRule:
    """The rule a send's ``channel`` follows: the send's own if it names the channel, else its
    type's, else none. Both were stored by ``channel_rules_clean``."""
    rule = send_rules.get(channel, type_rules.get(channel))
    if not rule:
        return NO_RULE
    return ChannelRule(
        delay_seconds=int(rule.get("delay_seconds", 0)),
        only_if_unread=bool(rule.get("only_if_unread", False)),
    )


def delay_words(seconds: int) -> str:
    """``900`` -> "15 minutes", ``7200`` -> "2 hours", ``86400`` -> "1 day"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def channel_rules_sentences(rules: Mapping[str, Any]) -> list[str]:
    """Each rule in plain words, in channel order: "Email after 15 minutes, only if still
    unread"; a rule that changes nothing reads "Push immediately"."""
    sentences = []
    for channel in RULED_CHANNELS:
        if channel not in rules:
            continue
        rule = channel_rule(type_rules=rules, send_rules={}, channel=channel)
        when = f"after {delay_words(rule.delay_seconds)}" if rule.delay_seconds else "immediately"
        unread = ", only if still unread" if rule.only_if_unread else ""
        sentences.append(f"{CHANNEL_LABELS[channel]} {when}{unread}")
    return sentences
