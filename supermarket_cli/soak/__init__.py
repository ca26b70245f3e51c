"""`supermarket soak`: faults on a schedule, then a reconciliation."""
