"""Topic names: `<domain>.<stream>`; dead letters go to `<topic>.dlq`."""

REGISTRY_SUPERVISORS = "registry.supervisors"
REGISTRY_TRAINING = "registry.training"
CASEWORK_SUPERVISION_REQUESTS = "casework.supervision-requests"
CASEWORK_FEEDBACK = "casework.feedback"
SELECTION_ASSIGNMENTS = "selection.assignments"
APPRAISAL_RESULTS = "appraisal.results"
FINANCE_SUBSIDIES = "finance.subsidies"
PLATFORM_CALENDAR = "platform.calendar"  # published and read by every service (the bureau's year notices)
PLATFORM_AUDIT = "platform.audit"  # published and read by every service (audit-log heads, shared/audit_watch.py)

ALL_TOPICS = (
    REGISTRY_SUPERVISORS, REGISTRY_TRAINING, CASEWORK_SUPERVISION_REQUESTS, CASEWORK_FEEDBACK,
    SELECTION_ASSIGNMENTS, APPRAISAL_RESULTS, FINANCE_SUBSIDIES, PLATFORM_CALENDAR, PLATFORM_AUDIT,
)


def dead_letter(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"
