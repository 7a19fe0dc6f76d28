"""training-worker: L2 regularization and weight decay, trained as a service."""
