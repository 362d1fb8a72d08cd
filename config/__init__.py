"""Shipped platform profiles (packaged as feedback_check.config)."""
