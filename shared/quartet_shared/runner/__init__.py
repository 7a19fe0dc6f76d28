"""The consumer runner, by concern: the loop, the commit protocol, dedup, failures and kafka-python workarounds.

Import the public names from `quartet_shared.consumer`; the modules here are the runner's parts.
"""
