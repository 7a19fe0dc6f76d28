"""The pure rental domain: states, transitions, billing arithmetic; no I/O."""
