"""`sterilog notify` (issue 16): one digest of what is due now (the `status` items) and alerts
for what happened since (a positive BI, a recall), sent by SMTP and/or a JSON webhook.

Never on the gate's path: nothing here is imported by `check` or `session start`. The same item
is sent at most once per clinic day (an alert once ever); every send is an audited row.
"""

from __future__ import annotations

import json
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog.clock import local_date
from sterilog.compliance import facts
from sterilog.errors import UserError
from sterilog.models import BiRead, NotificationSent, NotifySetting, Recall
from sterilog.services import status as status_svc
from sterilog.services import validate as v
from sterilog.services.base import Ctx

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Message:
    item: str  # the de-duplication key
    kind: str  # digest | alert
    text: str


def configure(
    ctx: Ctx,
    *,
    smtp: str | None,
    starttls: bool,
    user: str | None,
    from_addr: str | None,
    to: tuple[str, ...],
    webhook: str | None,
) -> NotifySetting:
    host, port = None, None
    if smtp is not None:
        host, sep, raw_port = smtp.rpartition(":")
        if not sep or not host or not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise UserError(f"--smtp {smtp!r} must be HOST:PORT, e.g. mail.example.org:587")
        port = int(raw_port)
        if from_addr is None or not to:
            raise UserError("--smtp needs --from ADDR and at least one --to ADDR")
    if smtp is None and webhook is None:
        raise UserError("give --smtp HOST:PORT (with --from and --to) and/or --webhook URL")
    for addr in (from_addr, *to):
        if addr is not None and ("@" not in addr or any(c.isspace() for c in addr)):
            raise UserError(f"{addr!r} is not an e-mail address")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise UserError(f"--webhook {webhook!r} must be an http:// or https:// URL")
    row = NotifySetting(
        smtp_host=host,
        smtp_port=port,
        starttls=starttls,
        smtp_user=v.text(user, "--user", required=False, limit=200),
        from_addr=from_addr,
        to_addrs=json.dumps(list(to)),
        webhook=webhook,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("settings.notify", [row])
    return row


def current(session: Session) -> NotifySetting | None:
    return session.execute(
        select(NotifySetting).order_by(NotifySetting.id.desc()).limit(1)
    ).scalar_one_or_none()


def pending(ctx: Ctx) -> list[Message]:
    """What this run would send: alerts not sent before, digest items not sent today."""
    s = ctx.session
    today = local_date(ctx.now, ctx.clinic.tz)
    sent_today = set(
        s.execute(select(NotificationSent.item).where(NotificationSent.day == today)).scalars()
    )
    alerted = set(
        s.execute(select(NotificationSent.item).where(NotificationSent.kind == "alert")).scalars()
    )
    out: list[Message] = []
    voided_reads = facts.voided_ids(s, "bi-read")
    for read in s.execute(
        select(BiRead)
        .where(BiRead.valid.is_(True), BiRead.result == "positive")
        .order_by(BiRead.id)
    ).scalars():
        key = f"alert:positive-bi:{read.id}"
        if read.id not in voided_reads and key not in alerted:
            out.append(
                Message(
                    key,
                    "alert",
                    f"POSITIVE spore test: BI {read.bi_id} read positive (valid control); the "
                    "sterilizer is locked and its loads since the last negative are suspect "
                    f"(`sterilog trace bi {read.bi_id}`).",
                )
            )
    voided_recalls = facts.voided_ids(s, "recall")
    for rec in s.execute(select(Recall).order_by(Recall.id)).scalars():
        key = f"alert:recall:{rec.id}"
        if rec.id not in voided_recalls and key not in alerted:
            out.append(Message(key, "alert", f"RECALL {rec.id} recorded: {rec.reason}"))
    for key, text in _other_alerts(ctx):
        if key not in alerted:
            out.append(Message(key, "alert", text))
    for item in status_svc.status(ctx):
        key = f"due:{item.code}:{item.kind}:{item.subject}:{item.state}"
        if key not in sent_today:
            out.append(
                Message(
                    key,
                    "digest",
                    f"{item.state.upper()} {item.kind} {item.subject}: {item.message}",
                )
            )
    return out


def _other_alerts(ctx: Ctx) -> list[tuple[str, str]]:
    """Sterilizer locks, staff lock-outs, clock anomalies, a failed integrity check: (key, text),
    each key naming one occurrence (a lock by when it started, a lock-out by its last PIN
    event, an anomaly by its audit entry, an integrity failure by the chain's head)."""
    from sqlalchemy import func

    from sterilog import audit
    from sterilog.compliance import history
    from sterilog.models import PinEvent, Staff
    from sterilog.services import people

    s = ctx.session
    pack = ctx.clinic.rules
    out: list[tuple[str, str]] = []
    for sid, code, _ in facts.sterilizers(s):
        lock = history.sterilizer_state(s, sid, ctx.now, pack, ctx.clinic.tz).facts.lock
        if lock.locked and lock.since is not None:
            out.append(
                (
                    f"alert:lock:{code}:{lock.since.isoformat()}",
                    f"STERILIZER {code} LOCKED: {lock.reason}; {lock.remaining} negative BI(s) "
                    "needed before loads run again.",
                )
            )
    for code in people.locked_staff(s, pack.pin_lockout_attempts):
        last = s.execute(
            select(func.max(PinEvent.id))
            .join(Staff, Staff.id == PinEvent.staff_id)
            .where(Staff.code == code)
        ).scalar_one()
        out.append(
            (
                f"alert:lockout:{code}:{last}",
                f"STAFF LOCKED OUT: {people.lock_message(code)}.",
            )
        )
    for a in audit.clock_anomalies(s, ctx.now, limit=20):
        out.append((f"alert:clock:{a.seq}", f"CLOCK ANOMALY in audit entry #{a.seq}: {a.message}"))
    result = audit.verify(s)
    if not result.ok:
        first = result.problems[0]
        out.append(
            (
                f"alert:integrity:{result.head}",
                f"INTEGRITY CHECK FAILED: {len(result.problems)} problem(s), first "
                f"{first.record}: {first.message} (run `sterilog audit verify`).",
            )
        )
    return out


def _body(clinic: str, messages: list[Message]) -> str:
    alerts = [m.text for m in messages if m.kind == "alert"]
    due = [m.text for m in messages if m.kind == "digest"]
    lines = [f"sterilog, {clinic}"]
    if alerts:
        lines += ["", "Alerts:", *(f"- {t}" for t in alerts)]
    if due:
        lines += ["", "Due or overdue now:", *(f"- {t}" for t in due)]
    return "\n".join(lines) + "\n"


def send(
    clinic: str, messages: list[Message], settings: NotifySetting, password: str | None
) -> list[str]:
    """Send one message (e-mail and/or webhook) holding every item. No database, no lock."""
    body = _body(clinic, messages)
    channels: list[str] = []
    alerts = sum(1 for m in messages if m.kind == "alert")
    subject = (
        f"sterilog {clinic}: "
        + (f"{alerts} ALERT(S), " if alerts else "")
        + f"{len(messages) - alerts} item(s) due"
    )
    if settings.smtp_host is not None and settings.smtp_port is not None:
        mail = EmailMessage()
        mail["From"] = settings.from_addr
        mail["To"] = ", ".join(json.loads(settings.to_addrs))
        mail["Subject"] = subject
        mail.set_content(body)
        try:
            with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
                if settings.starttls:
                    smtp.starttls()
                if settings.smtp_user:
                    if password is None:
                        raise UserError("the SMTP user needs STERILOG_SMTP_PASSWORD")
                    smtp.login(settings.smtp_user, password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise UserError(f"cannot send e-mail via {settings.smtp_host}: {exc}") from None
        channels.append("smtp")
    if settings.webhook is not None:
        payload = json.dumps(
            {"clinic": clinic, "subject": subject, "items": [m.__dict__ for m in messages]}
        ).encode("utf-8")
        req = urllib.request.Request(
            settings.webhook, data=payload, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                resp.read()
        except OSError as exc:
            raise UserError(f"cannot post to the webhook: {exc}") from None
        channels.append("webhook")
    return channels


def record(ctx: Ctx, messages: list[Message], channels: list[str]) -> None:
    """Audit what was sent (a short write of its own, after the network is done)."""
    today = local_date(ctx.now, ctx.clinic.tz)
    rows = [
        NotificationSent(
            day=today,
            item=m.item[:200],
            kind=m.kind,
            channels="+".join(channels),
            text=m.text,
            recorded_at=ctx.now,
        )
        for m in messages
    ]
    ctx.add(*rows)
    ctx.audit("notify.send", rows)
