"""Bulk roster work: xlsx import of appointees, roster export."""
