"""Entrypoints: the HTTP API, the web UI and the Kafka command worker. They build commands, run them through the
service and present its read models; they hold no rules of their own."""
