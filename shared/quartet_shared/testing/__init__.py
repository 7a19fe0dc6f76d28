"""Test doubles for the kernel: an in-memory broker and fakes for its ports."""
