"""Resignation (R7.1), dismissal and its documents (R8.1, R9.1, R37.1), N-BAN, N-EXCL exclusions."""
