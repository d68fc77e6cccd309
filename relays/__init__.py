"""Clients of public services the draw relies on (drand's randomness relays)."""
