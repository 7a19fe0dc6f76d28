"""Developer tooling: the `quartet` CLI, native servers, the service supervisor, images, Strimzi manifests."""
