"""Training: initial, make-up, annual and term sessions (R21.1–R24.1)."""
