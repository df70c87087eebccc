"""Simulators: each speaks its device's protocol over a real transport (the far end of a pty
pair, a loopback HTTP server, vsmartcard's virtual reader), runs its loop in a thread, and has
fault switches as attributes, for the tests and the demo."""
