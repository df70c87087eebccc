"""Simulators: each speaks its device's protocol over a real transport, with fault switches."""
