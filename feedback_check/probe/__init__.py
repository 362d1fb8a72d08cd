"""Probe: URL lint, DNS, and per address TCP, TLS and HTTP."""
