"""Use cases of notify: store messages (idempotently) with their deliveries, the inbox, SMS dispatch, reminders."""

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import rules
from services.notify.config import NotifySettings
from services.notify.models import delivery, message, message_read, request_info
from services.notify.sms import SendFailed
from shared import clock
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role
from shared.crypto import FieldCipher
from shared.db import Database
from shared.errors import NotFound, describe_exception
from shared.http import UpstreamUnavailable

log = logging.getLogger(__name__)

PHONE_CONTEXT = "notify.delivery.phone"
STAFF_ROLES = (Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.PROCURATORATE, Role.FINANCE, Role.AUDITOR)
LEASE = timedelta(minutes=2)  # a claimed SMS is not claimed again for this long (a crash mid-send)


# --- storing messages ---------------------------------------------------------------------------

async def record(session: AsyncSession, drafts: Sequence[rules.Draft], *, key_prefix: str, source: str,
                 settings: NotifySettings, cipher: FieldCipher, event_id: uuid.UUID | None = None,
                 phone: str | None = None) -> list[uuid.UUID]:
    """Store each draft once (its dedupe key = key_prefix + recipient) with its deliveries: the inbox at once,
    an SMS queued (or held for quiet hours). Returns the ids of the messages new now."""
    now = clock.now()
    created = []
    for draft in drafts:
        message_id = uuid.uuid4()
        stored = await session.scalar(
            insert(message).values(
                id=message_id, dedupe_key=f"{key_prefix}:{draft.recipient}", kind=draft.kind, rule=draft.rule,
                urgent=draft.urgent, supervisor_id=uuid.UUID(draft.supervisor_id) if draft.supervisor_id else None,
                role=draft.role, district=draft.district,
                title=rules.redact_id_numbers(draft.title), body=rules.redact_id_numbers(draft.body),
                subject_type=draft.subject_type, subject_id=draft.subject_id, source=source, event_id=event_id,
                created_at=now,
            ).on_conflict_do_nothing(constraint="uq_message_dedupe_key").returning(message.c.id))
        if stored is None:
            continue  # the same event (or reminder) again: one message
        created.append(stored)
        await session.execute(insert(delivery).values(
            message_id=stored, channel="inbox", status="sent", attempts=1, provider="inbox", sent_at=now,
            created_at=now, updated_at=now))
        if "sms" in draft.channels:
            wait = rules.send_after(now, urgent=draft.urgent, start=settings.quiet_hours_start,
                                    end=settings.quiet_hours_end)
            await session.execute(insert(delivery).values(
                message_id=stored, channel="sms", status="held" if wait else "queued", attempts=0,
                next_attempt_at=wait or now, created_at=now, updated_at=now,
                phone_sealed=cipher.encrypt(phone, context=PHONE_CONTEXT) if phone else None))
    return created


async def save_request(session: AsyncSession, **values) -> None:
    await session.execute(insert(request_info).values(**values).on_conflict_do_nothing())


def _activity(row) -> rules.Activity | None:
    if row is None:
        return None
    return rules.Activity(activity_type=row.activity_type, place=row.place, starts_at=row.starts_at,
                          district=row.district, office=row.office)


async def activity_of(session: AsyncSession, request_id: uuid.UUID) -> rules.Activity | None:
    """The activity of a request (what notify saw of casework's SupervisionRequested)."""
    return _activity((await session.execute(select(request_info).where(
        request_info.c.request_id == request_id))).first())


async def activity_of_activity(session: AsyncSession, activity_id: uuid.UUID) -> rules.Activity | None:
    """The activity as of casework's latest request for it."""
    return _activity((await session.execute(select(request_info).where(request_info.c.activity_id == activity_id)
                                            .order_by(request_info.c.received_at.desc()).limit(1))).first())


# --- the inbox ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Audience:
    """Whose inbox: a supervisor's own, or the staff roles of a principal (and their district)."""

    supervisor_id: uuid.UUID | None
    roles: tuple[str, ...]
    district: str | None  # None: every district (city-wide roles)
    reader: str

    def cursor_filters(self) -> dict:
        return {"supervisor": str(self.supervisor_id) if self.supervisor_id else None,
                "roles": list(self.roles), "district": self.district, "reader": self.reader}


def audience_of(principal: Principal, district: str | None) -> Audience:
    """R2.1: a supervisor sees their own messages only; district-scoped staff only their district's and the
    city-wide ones; city-wide roles every district (or the one asked for)."""
    if principal.has(Role.SUPERVISOR) and not principal.has(*STAFF_ROLES):
        try:
            supervisor_id = uuid.UUID(principal.supervisor_id or "")
        except ValueError:
            supervisor_id = uuid.UUID(int=0)  # a token without a valid supervisor id has no messages
        return Audience(supervisor_id, (), None, principal.subject)
    roles = tuple(sorted(r.value for r in principal.roles if r in STAFF_ROLES))
    scoped = not principal.is_citywide and principal.has(*DISTRICT_SCOPED_ROLES)
    return Audience(None, roles, principal.district if scoped else district, principal.subject)


def _visible(audience: Audience):
    if audience.supervisor_id is not None:
        return message.c.supervisor_id == audience.supervisor_id
    clause = message.c.role.in_(audience.roles)
    if audience.district is not None:
        clause = and_(clause, or_(message.c.district.is_(None), message.c.district == audience.district))
    return clause


def _is_read(reader: str):
    return exists().where(message_read.c.message_id == message.c.id, message_read.c.reader == reader)


async def list_inbox(session: AsyncSession, audience: Audience, *, unread: bool | None, kinds: list[str],
                     since: date | None, until: date | None, limit: int,
                     after: list | None) -> tuple[list[dict], int, int, list | None]:
    """(page, total, unread count, sort key of the last row when more follow): newest first, id tie-break."""
    where = [_visible(audience)]
    is_read = _is_read(audience.reader)
    if kinds:
        where.append(message.c.kind.in_(kinds))
    if since is not None:
        where.append(message.c.created_at >= datetime.combine(since, datetime.min.time(), tzinfo=clock.SHANGHAI))
    if until is not None:
        where.append(message.c.created_at < datetime.combine(until + timedelta(days=1), datetime.min.time(),
                                                             tzinfo=clock.SHANGHAI))
    if unread is not None:
        where.append(~is_read if unread else is_read)
    total = await session.scalar(select(func.count()).select_from(message).where(*where))
    unread_count = await session.scalar(select(func.count()).select_from(message)
                                        .where(_visible(audience), ~is_read))
    page_where = list(where)
    if after is not None:
        page_where.append(tuple_(message.c.created_at, message.c.id) < tuple(after))
    rows = (await session.execute(
        select(message, is_read.label("read"))
        .where(*page_where).order_by(message.c.created_at.desc(), message.c.id.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [view(r) for r in rows]
    return items, total, unread_count, ([rows[-1].created_at, rows[-1].id] if more else None)


def view(row) -> dict:
    return {
        "id": str(row.id), "kind": row.kind, "rule": row.rule, "urgent": row.urgent, "title": row.title,
        "body": row.body, "subject_type": row.subject_type, "subject_id": row.subject_id,
        "district": row.district, "role": row.role,
        "supervisor_id": str(row.supervisor_id) if row.supervisor_id else None,
        "created_at": row.created_at.isoformat(), "read": bool(row.read),
    }


async def mark_read(session: AsyncSession, audience: Audience, message_id: uuid.UUID) -> dict:
    """Mark a message the reader may see as read (idempotent); 404 for one they may not see."""
    row = (await session.execute(select(message, _is_read(audience.reader).label("read"))
                                 .where(message.c.id == message_id, _visible(audience)))).first()
    if row is None:
        raise NotFound("消息", message_id)
    await session.execute(insert(message_read).values(message_id=message_id, reader=audience.reader,
                                                      read_at=clock.now()).on_conflict_do_nothing())
    return {**view(row), "read": True}


async def deliveries_of(session: AsyncSession, message_id: uuid.UUID) -> list[dict]:
    rows = (await session.execute(select(delivery).where(delivery.c.message_id == message_id)
                                  .order_by(delivery.c.id))).all()
    return [delivery_view(r) for r in rows]


def delivery_view(r) -> dict:
    return {"id": r.id, "message_id": str(r.message_id), "channel": r.channel, "status": r.status,
            "attempts": r.attempts, "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
            "last_error": r.last_error, "provider": r.provider, "provider_ref": r.provider_ref,
            "sent_at": r.sent_at.isoformat() if r.sent_at else None, "updated_at": r.updated_at.isoformat()}


async def list_deliveries(session: AsyncSession, *, statuses: list[str], channel: str | None, limit: int,
                          after: list | None) -> tuple[list[dict], int, list | None]:
    where = []
    if statuses:
        where.append(delivery.c.status.in_(statuses))
    if channel:
        where.append(delivery.c.channel == channel)
    total = await session.scalar(select(func.count()).select_from(delivery).where(*where))
    page_where = list(where)
    if after is not None:
        page_where.append(delivery.c.id < after[0])
    rows = (await session.execute(select(delivery).where(*page_where).order_by(delivery.c.id.desc())
                                  .limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [delivery_view(r) for r in rows], total, ([rows[-1].id] if more else None)


# --- SMS dispatch -------------------------------------------------------------------------------

PhoneLookup = Callable[[uuid.UUID], Awaitable[str | None]]


async def dispatch_sms(db: Database, *, sender, settings: NotifySettings, cipher: FieldCipher,
                       lookup_phone: PhoneLookup) -> dict[str, int]:
    """Send the SMS that are due: claim a batch (a lease, FOR UPDATE SKIP LOCKED), send each outside the
    transaction, record the outcome. Held ones due before quiet hours ended wait again; a failure is retried
    after backoff until sms_max_attempts, then failed. Nothing is lost: the inbox already has the message."""
    now = clock.now()
    due = (select(delivery.c.id).where(delivery.c.channel == "sms",
                                       delivery.c.status.in_(("queued", "held", "retrying")),
                                       delivery.c.next_attempt_at <= now)
           .order_by(delivery.c.next_attempt_at).limit(settings.sms_batch).with_for_update(skip_locked=True))
    async with db.transaction() as session:
        claimed = (await session.execute(
            update(delivery).where(delivery.c.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=now + LEASE, updated_at=now)
            .returning(delivery.c.id, delivery.c.attempts, delivery.c.phone_sealed, message.c.supervisor_id,
                       message.c.kind, message.c.title, message.c.body, message.c.urgent)
            .where(message.c.id == delivery.c.message_id))).all()
    outcome = {"sent": 0, "retrying": 0, "failed": 0, "held": 0}
    for row in claimed:
        state = await _send_one(db, row, sender=sender, settings=settings, cipher=cipher, lookup_phone=lookup_phone)
        outcome[state] += 1
    return outcome


async def _send_one(db: Database, row, *, sender, settings: NotifySettings, cipher: FieldCipher,
                    lookup_phone: PhoneLookup) -> str:
    now = clock.now()
    wait = rules.send_after(now, urgent=row.urgent, start=settings.quiet_hours_start, end=settings.quiet_hours_end)
    if wait is not None:  # quiet hours (again): hold it until they end
        return await _finish(db, row.id, status="held", next_attempt_at=wait)
    attempts = row.attempts + 1
    try:
        phone = cipher.decrypt(row.phone_sealed, context=PHONE_CONTEXT) if row.phone_sealed else \
            await lookup_phone(row.supervisor_id)
        if not phone:
            return await _finish(db, row.id, status="failed", attempts=attempts,
                                 last_error="no phone number for the recipient")
        template = settings.sms_templates.get(row.kind, settings.sms_template_id)
        sent = await sender.send(phone=phone, template_id=template,
                                 params=[rules.sms_text(row.title, 60), rules.sms_text(row.body)])
    except (SendFailed, UpstreamUnavailable) as exc:
        error = str(exc) if isinstance(exc, SendFailed) else f"registry: {exc.detail}"
        if attempts >= settings.sms_max_attempts:
            log.error("SMS delivery %s failed after %d attempts: %s", row.id, attempts, error)
            return await _finish(db, row.id, status="failed", attempts=attempts, last_error=error)
        retry_at = now + timedelta(seconds=rules.backoff_seconds(attempts, base=settings.sms_backoff_base_seconds,
                                                                 cap=settings.sms_backoff_cap_seconds))
        log.warning("SMS delivery %s attempt %d failed (%s); retrying at %s", row.id, attempts, error,
                    retry_at.isoformat())
        return await _finish(db, row.id, status="retrying", attempts=attempts, last_error=error,
                             next_attempt_at=retry_at)
    except Exception as exc:  # unexpected: recorded and retried like a gateway failure
        log.error("SMS delivery %s: %s", row.id, describe_exception(exc))
        return await _finish(db, row.id, status="retrying", attempts=attempts, last_error=describe_exception(exc),
                             next_attempt_at=now + timedelta(seconds=settings.sms_backoff_base_seconds))
    return await _finish(db, row.id, status="sent", attempts=attempts, provider=sent.provider,
                         provider_ref=sent.reference, sent_at=now, next_attempt_at=None, last_error=None)


async def _finish(db: Database, delivery_id: int, *, status: str, **values) -> str:
    async with db.transaction() as session:
        await session.execute(update(delivery).where(delivery.c.id == delivery_id)
                              .values(status=status, updated_at=clock.now(), **values))
    return status


# --- reminders from the services' deadlines -----------------------------------------------------

DeadlineFetch = Callable[[str], Awaitable[dict | None]]


async def remind(db: Database, *, fetch: DeadlineFetch, settings: NotifySettings,
                 cipher: FieldCipher) -> dict[str, int]:
    """Read every service's GET /deadlines (a service without it — 404 — or down is skipped this time) and
    store the reminders due today: a day before, on the due day, and once overdue."""
    today = clock.today()
    counts: dict[str, int] = {}
    for service in settings.deadline_services:
        try:
            answer = await fetch(service)
        except Exception as exc:
            log.warning("deadlines of %s unavailable (%s); reminders from it wait for the next run", service,
                        describe_exception(exc))
            continue
        if answer is None:
            log.debug("%s has no GET /deadlines; skipped", service)
            continue
        made = 0
        async with db.transaction() as session:
            for item in answer.get("items", []):
                stage = rules.reminder_stage(date.fromisoformat(item["due_on"]), today)
                if stage is None:
                    continue
                made += len(await record(session, rules.reminders(service, item, stage),
                                         key_prefix=rules.reminder_key(service, item, stage), source=service,
                                         settings=settings, cipher=cipher))
        counts[service] = made
    return counts
