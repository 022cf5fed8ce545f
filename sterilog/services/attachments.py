"""Attachments: original documents kept in the database (the lab's spore-test report, the
engineer's certificate, a recall notice, the autoclave's own cycle file).

The bytes live in `attachments.data`; the row also records their SHA-256, and the audit entry
records the column as `sha256:<hex>` of the stored bytes (audit.DIGEST_COLUMNS), so `audit
verify` finds a changed or removed file (exit 4). Nothing is ever replaced: a new version is a
new attachment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sterilog.clock import iso
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import (
    Attachment,
    BiologicalIndicator,
    CartridgeLot,
    Cycle,
    Exposure,
    ImportedCycle,
    Incident,
    Recall,
    Staff,
    Sterilizer,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx

MAX_BYTES = 20 * 1024 * 1024  # 20 MB: a scanned certificate or a phone photo, not a video
KINDS = ("load", "bi", "sterilizer", "recall", "incident", "exposure", "lot", "staff")
_SNIFF = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def media_type(filename: str, data: bytes) -> str:
    for magic, kind in _SNIFF:
        if data.startswith(magic):
            return kind
    guessed = mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_file_size(name: str, size: int) -> None:
    """Checked before reading a file, so a huge one is refused without loading it."""
    if size == 0:
        raise UserError(f"{name} is empty; nothing to attach")
    if size > MAX_BYTES:
        raise UserError(
            f"{name} is {size / 1024 / 1024:.1f} MB; attachments are limited to "
            f"{MAX_BYTES // 1024 // 1024} MB (scan at a lower resolution, or split it)"
        )


def check_size(name: str, data: bytes) -> None:
    check_file_size(name, len(data))


def new_attachment(
    ctx: Ctx, *, kind: str, record_id: int, filename: str, data: bytes, note: str | None
) -> Attachment:
    """The row (added, not yet audited: the caller audits it with the records it belongs to)."""
    check_size(filename, data)
    row = Attachment(
        kind=kind,
        record_id=record_id,
        filename=filename[-255:],
        media_type=media_type(filename, data),
        size=len(data),
        sha256=sha256(data),
        data=data,
        note=note,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.session.flush()
    return row


def _int_id(raw: str, kind: str) -> int:
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise UserError(f"{kind} ID {raw!r} is not a number")
    return int(text)


def resolve(session: Session, kind: str, raw: str) -> tuple[int, str]:
    """The record's row id and the ID users see, or a clear error."""
    if kind not in KINDS:
        raise UserError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    if kind in {"sterilizer", "staff"}:
        model: Any = Sterilizer if kind == "sterilizer" else Staff
        code = v.ident(raw, f"{kind} ID")
        rid = session.execute(select(model.id).where(model.code == code)).scalar_one_or_none()
        if rid is None:
            raise UnknownRecord(kind, code)
        return int(rid), code
    if kind == "lot":
        gtin, sep, lot = raw.strip().partition("/")
        if not sep or not gtin or not lot:
            raise UserError(f"a lot is given as GTIN/LOT (e.g. 09506000134352/A1B2), got {raw!r}")
        rid = session.execute(
            select(CartridgeLot.id).where(CartridgeLot.gtin == gtin, CartridgeLot.lot == lot)
        ).scalar_one_or_none()
        if rid is None:
            raise UnknownRecord("lot", raw)
        return int(rid), f"{gtin}/{lot}"
    models: dict[str, Any] = {
        "load": Cycle,
        "bi": BiologicalIndicator,
        "recall": Recall,
        "incident": Incident,
        "exposure": Exposure,
    }
    ident = _int_id(raw, kind)
    if session.get(models[kind], ident) is None:
        raise UnknownRecord(kind, ident)
    return ident, str(ident)


def attach(
    ctx: Ctx, kind: str, ident: str, *, filename: str, data: bytes, note: str | None
) -> tuple[Attachment, str]:
    rid, shown = resolve(ctx.session, kind, ident)
    text = v.text(note, "--note", required=False, limit=2000)
    row = new_attachment(ctx, kind=kind, record_id=rid, filename=filename, data=data, note=text)
    ctx.audit("attachment.add", [row])
    return row, shown


@dataclass(frozen=True)
class AttachmentInfo:
    id: int
    kind: str
    record_id: int
    filename: str
    media_type: str
    size: int
    sha256: str
    note: str | None
    recorded_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "attachment_id": self.id,
            "kind": self.kind,
            "record_id": self.record_id,
            "filename": self.filename,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
            "note": self.note,
            "recorded_at": iso(self.recorded_at),
        }


_INFO_COLS = (
    Attachment.id,
    Attachment.kind,
    Attachment.record_id,
    Attachment.filename,
    Attachment.media_type,
    Attachment.size,
    Attachment.sha256,
    Attachment.note,
    Attachment.recorded_at,
)


def list_attachments(
    session: Session, kind: str | None = None, record_id: int | None = None
) -> list[AttachmentInfo]:
    """Every attachment (without the bytes), or those of one record. A load's list includes the
    device file its imported cycle was read from."""
    q = select(*_INFO_COLS).order_by(Attachment.id)
    if kind is not None and record_id is not None:
        cond = (Attachment.kind == kind) & (Attachment.record_id == record_id)
        if kind == "load":
            source = select(ImportedCycle.source_id).where(ImportedCycle.cycle_id == record_id)
            q = q.where(or_(cond, Attachment.id.in_(source)))
        else:
            q = q.where(cond)
    return [AttachmentInfo(*row) for row in session.execute(q).all()]


def attachments_by_record(session: Session) -> dict[tuple[str, int], list[AttachmentInfo]]:
    """(kind, record id) -> attachments, with each imported load's source file under the load."""
    out: dict[tuple[str, int], list[AttachmentInfo]] = {}
    infos = {a.id: a for a in list_attachments(session)}
    for a in infos.values():
        out.setdefault((a.kind, a.record_id), []).append(a)
    for cycle_id, source_id in session.execute(
        select(ImportedCycle.cycle_id, ImportedCycle.source_id).where(
            ImportedCycle.cycle_id.is_not(None)
        )
    ).all():
        if cycle_id is not None:
            out.setdefault(("load", int(cycle_id)), []).append(infos[int(source_id)])
    return out


def get_attachment(session: Session, att_id: int) -> tuple[AttachmentInfo, bytes]:
    """The bytes, refused (exit 4) when they no longer match the recorded SHA-256."""
    from sterilog.errors import IntegrityFailure

    row = session.get(Attachment, att_id)
    if row is None:
        raise UnknownRecord("attachment", att_id)
    data = bytes(row.data)
    if sha256(data) != row.sha256:
        raise IntegrityFailure(
            f"attachment {att_id}'s bytes do not match its recorded SHA-256 (changed behind "
            "the tool's back); run `sterilog audit verify`"
        )
    info = AttachmentInfo(
        row.id,
        row.kind,
        row.record_id,
        row.filename,
        row.media_type,
        row.size,
        row.sha256,
        row.note,
        row.recorded_at,
    )
    return info, data


def parse_attachment_id(raw: str) -> int:
    return _int_id(raw, "attachment")
