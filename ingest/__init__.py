"""Redis Streams consumers: the outbox relay (Postgres -> stream) and the metric aggregators."""
