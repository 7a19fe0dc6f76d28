"""Pure planning domain: scenario, cost, encodings and optimizers; numpy only, no I/O."""
