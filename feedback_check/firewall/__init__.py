"""Firewall analysis: which published PostFinance ranges can reach the feedback port, layer by layer."""
