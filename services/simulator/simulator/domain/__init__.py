"""The simulator's pure domain: scenarios, rate shapes, the seeded plan, the audit and the report model."""
