"""House rental management: houses, applications, leases, bills and payments, with an outbox to Kafka."""
