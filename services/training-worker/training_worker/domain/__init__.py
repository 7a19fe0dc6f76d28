"""Pure training domain: models, optimizers, regularizers and data; numpy only, no I/O."""
