"""datadistill core engine."""
