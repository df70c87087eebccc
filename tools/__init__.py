"""Tools run from a checkout of the repository (not installed on an appliance or the hub)."""
