"""What the fault tests and the benches both run on private servers: the 3-node cluster with its leaders and
coordinators, the countable effect worker and its processes, committed reads, and the rental manager's process.

The benches are scripts outside any package; this is where they find these without reaching into `tests`.
"""
