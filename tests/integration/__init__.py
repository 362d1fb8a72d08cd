"""Integration tests: real sockets on 127.0.0.1 (stub DNS, HTTP and TLS servers)."""
