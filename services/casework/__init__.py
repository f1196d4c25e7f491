"""Casework service: the procuratorate's side of supervised case activities (Art. 15–20)."""
