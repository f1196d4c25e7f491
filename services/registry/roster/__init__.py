"""The roster: supervisors' records, personal data (R3.1), eligibility (R22.3), the hot lists, specialties."""
