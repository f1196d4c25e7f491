"""Appraisal service: the ledger (台账) and the annual and term appraisal (Chapter 5, R28.1–R39.1)."""
