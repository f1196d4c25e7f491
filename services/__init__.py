"""The five services: registry, selection, casework, appraisal, finance (each services/<name>/app.py)."""
