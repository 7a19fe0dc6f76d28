"""Adapters: what the service's ports are made of (SQLAlchemy tables and repositories, the outbox relay, the
Redis login throttle). They may import the domain and the service, never the entrypoints."""
