"""The casework use cases, by capability (the shape of selection's packages):

- `access`: who may see or change an activity (R2.1, R3.1, R15.1), the audit helper;
- `activities/`: activities (N-ACT, N-MUST), cancel and reschedule, materials (R15.1), observers (R19.1);
- `requests/`: supervision requests and the draw protocol (R10–R14, DRAW.md), selection's events, receipt check;
- `feedback/`: opinions (R16.1), the form and signatures (R17.1), adoption (R18.1);
- `reports/`: participation reports (R20.1) and monthly transmittals (R20.2).

Each router calls its own capability's service; this module re-exports them for the consumers, the receipt
job, the demo and the benchmarks.
The caller owns the transaction: nothing here commits.
"""

from services.casework.access import (  # noqa: F401
    NONCE_CONTEXT,
    PHONE_CONTEXT,
    STAFF_ROLES,
    audit_log,
    ensure_office,
    ensure_procuratorate,
    ensure_reader,
    is_participant,
    live_roster,
    require_activity,
)
from services.casework.activities.service import (  # noqa: F401
    activity_dict,
    add_material,
    add_observer,
    cancel_activity,
    confirmed_count,
    create_activity,
    ensure_material_access,
    hold,
    list_activities,
    list_materials,
    list_observers,
    material_meta,
    observer_dict,
    read_material,
    reschedule,
    update_summary,
)
from services.casework.feedback.service import (  # noqa: F401
    adoption_annex,
    adoption_dict,
    complete_if_signed,
    decide_adoption,
    draft_content,
    form_of,
    form_view,
    list_opinions,
    notices_of,
    on_absent,
    opinion_dict,
    opinion_history,
    participants,
    record_opinion,
    sign,
    signature_image,
)
from services.casework.reports.service import (  # noqa: F401
    overdue_participation,
    overdue_transmittals,
    report_participation,
    send_transmittal,
    transmittal_dict,
)
from services.casework.requests.service import (  # noqa: F401
    acceptance_dict,
    cancel_request,
    cancel_request_row,
    check_draw_receipt,
    claim_due_draw_checks,
    current_request,
    draw_check_dict,
    known_request,
    list_requests,
    new_request,
    on_accepted,
    on_draw_completed,
    on_drawn,
    on_recusal_decided,
    on_refused,
    on_released,
    on_staffed,
    recusal_dict,
    request_recusal,
    request_supervision,
    request_view,
    require_request,
    retry_draw_check_later,
)
