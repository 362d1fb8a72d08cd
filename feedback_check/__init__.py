"""feedback-check: diagnose PostFinance e-Commerce post-sale feedback failures ("process error")."""

__version__ = "0.1.0"
