"""The web push channel: notifications shown by the browser, through its push service, even
with no page of the tenant's open. The server's key pair (``vapid``), fan-out into the outbox
(``channel``), and the Web Push protocol with its errors (``transport``). Subscriptions are
managed by ``services.push_subscriptions``."""
