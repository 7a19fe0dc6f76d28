"""Message schemas, one module per domain; each model registers its `ce_type` on import."""
