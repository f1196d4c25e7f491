"""Selection's due and overdue items for `GET /deadlines` (shared/deadlines.py), each citing the rule that sets it:

- R10.2 `consent_pending`: a short-notice request waits for a bureau user's decision, before the activity starts;
- R11.1 `beacon_value_due`: an accepted request waits for the value of the public beacon named at acceptance;
- R11.1 `reveal_due`: an accepted request waits for the procuratorate's nonce until `DRAW_REVEAL_TIMEOUT`
  (then the draw runs without it, DRAW.md step 4);
- R12.1 `contact_pending`: drawn people in the contact window not reached yet, before the activity starts;
- R14.1 `redraw_needed`: a drawn request short of people, before the activity starts;
- R13.2 `recusal_pending`: a recusal the bureau has to decide, before the activity starts.

Everything but the reveal is the bureau's to do; the district is the activity's. Read only, nothing here commits.
"""

from datetime import timedelta

from sqlalchemy import cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.models import candidate, recusal, request
from services.selection.requests.service import LIVE
from shared import clock
from shared.clock import local_date, local_midnight
from shared.deadlines import Deadline, DeadlineQuery

BUREAU = ["bureau_admin"]



def _activity_item(r, *, rule: str, kind: str, title: str, roles: list[str] = BUREAU,
                   subject_type: str = "request", subject_id: object = None) -> Deadline:
    """An item due on the activity's day (Shanghai), at its start."""
    return Deadline(rule=rule, kind=kind, title=title, subject_type=subject_type,
                    subject_id=str(subject_id or r.id), district=r.district, roles=roles,
                    due_on=local_date(r.starts_at), due_at=r.starts_at)


async def compute(session: AsyncSession, query: DeadlineQuery) -> list[Deadline]:
    """Every open selection item due on or before the query's horizon (overdue ones included)."""
    until = local_midnight(query.horizon + timedelta(days=1))
    now = clock.now()
    where = [] if query.district is None else [request.c.district == query.district]
    columns = (request.c.id, request.c.case_ref, request.c.office, request.c.district, request.c.starts_at)
    items: list[Deadline] = []

    consent = (await session.execute(select(*columns).where(
        request.c.status == "awaiting_consent", request.c.starts_at < until, *where))).all()
    items += [_activity_item(r, rule="R10.2", kind="consent_pending",
                             title=f"{r.case_ref}（{r.office}）申请缩短通知期限，待市司法局决定是否同意（R10.2）")
              for r in consent]

    beacon_waits = func.jsonb_typeof(request.c.beacon) == "object"
    beacon = (await session.execute(select(*columns).where(
        request.c.status == "accepted", beacon_waits, ~request.c.beacon.has_key("value"),
        request.c.starts_at < until, *where))).all()
    items += [_activity_item(r, rule="R11.1", kind="beacon_value_due",
                             title=f"{r.case_ref}：录入受理时指定的公开随机源的开奖结果后即行抽选（R11.1）")
              for r in beacon]

    reveal = (await session.execute(select(*columns, request.c.reveal_deadline).where(
        request.c.status == "accepted", request.c.procuratorate_commitment.is_not(None),
        request.c.procuratorate_nonce.is_(None), request.c.reveal_deadline.is_not(None),
        request.c.reveal_deadline < until, *where))).all()
    items += [Deadline(rule="R11.1", kind="reveal_due", subject_type="request", subject_id=str(r.id),
                       district=r.district, roles=["procuratorate"], due_on=local_date(r.reveal_deadline),
                       due_at=r.reveal_deadline,
                       title=f"{r.case_ref}：待检察院公开随机数；逾时将不含该随机数抽选（R11.1）")
              for r in reveal]

    pending = select(func.count()).where(candidate.c.request_id == request.c.id,
                                         candidate.c.status == "pending").scalar_subquery()
    contact = (await session.execute(select(*columns, pending.label("pending")).where(
        request.c.status == "drawn", request.c.starts_at > now, request.c.starts_at < until, pending > 0,
        *where))).all()
    items += [_activity_item(r, rule="R12.1", kind="contact_pending",
                             title=f"{r.case_ref}：按抽选顺序联络{r.pending}名待确认的人民监督员（R12.1）")
              for r in contact]

    short = request.c.shortfall.op("<>")(cast(literal("{}"), JSONB))
    redraw = (await session.execute(select(*columns).where(
        request.c.status == "drawn", short, request.c.starts_at > now, request.c.starts_at < until,
        *where))).all()
    items += [_activity_item(r, rule="R14.1", kind="redraw_needed",
                             title=f"{r.case_ref}：抽选人数不足，按原则重新抽选（R14.1）") for r in redraw]

    recusals = (await session.execute(select(*columns, recusal.c.id.label("recusal_id"), recusal.c.source)
                                      .select_from(recusal.join(request, request.c.id == recusal.c.request_id))
                                      .where(recusal.c.status == "pending", request.c.status.in_(LIVE),
                                             request.c.starts_at < until, *where))).all()
    items += [_activity_item(r, rule="R13.2", kind="recusal_pending", subject_type="recusal",
                             subject_id=r.recusal_id, title=f"{r.case_ref}：回避申请待市司法局决定（R13.2）")
              for r in recusals]
    return items
