"""The demo: the whole system on this machine, from nothing (``make demo``, ``python -m tools.demo``).

It is a tool of the repository, not of the field: it drives the hub (``cloud``) and the device
simulators (``drivers.sim``), which the field-tech command line (``provisioning``) never imports.
"""
