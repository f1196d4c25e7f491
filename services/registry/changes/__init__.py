"""Change reports of personal information (R6.1)."""
