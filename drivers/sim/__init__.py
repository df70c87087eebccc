"""Simulators: each speaks its device's protocol on the far end of a real pty pair, runs its
loop in a thread, and has fault switches as attributes, for the tests and the demo."""
