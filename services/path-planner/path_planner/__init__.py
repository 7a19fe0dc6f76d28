"""path-planner: UAV 3-D path planning with the Butterfly Optimization Algorithm, as a service."""
