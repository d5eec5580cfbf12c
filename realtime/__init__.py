"""The WebSocket gateway: authenticated subscriptions, snapshot then ordered updates, fan-out across nodes."""
