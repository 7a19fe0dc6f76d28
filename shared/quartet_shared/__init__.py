"""Quartet messaging kernel: the one place every service gets its Kafka, Redis, HTTP and settings plumbing."""
