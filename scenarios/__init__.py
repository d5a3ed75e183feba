"""scenarios: drills — scenario files and the simulator that drives mobilize's own core on a virtual clock."""
