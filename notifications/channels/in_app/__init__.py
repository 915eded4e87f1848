"""The in-app channel: the recipient's inbox row, written by the send itself (``fan_out``)
and pushed over the WebSocket after commit; there is nothing for a worker to deliver."""
