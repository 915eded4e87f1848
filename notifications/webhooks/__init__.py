"""Outbound webhooks: the tenant's own endpoints receive its events, signed per the Standard
Webhooks specification.

- ``events``: the event names and the payload each event carries (pure functions).
- ``signing``: signing secrets (generated, kept encrypted) and the signature headers.
- ``notifications.services.webhook_endpoints``: creating, changing and deleting endpoints.

Delivering events (an outbox, retries, the address guard at connect time) builds on these.
"""
