"""Appointments (terms): R4.1 term and its end, R5.1 numbers, N-TERM, N-BAN."""
