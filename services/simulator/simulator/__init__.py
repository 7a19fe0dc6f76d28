"""Quartet simulator: workloads, faults and the end-to-end audit."""
