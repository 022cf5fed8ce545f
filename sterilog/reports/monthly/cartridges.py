"""Section 6, Cartridge stock: movements per lot, deliveries, discards, recalls. Data
(`stock`, `receipts`, `discards`, `recalls`), then layout (`render`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from sterilog.compliance import facts
from sterilog.compliance.voids import counts
from sterilog.models import (
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Discard,
    Recall,
    Room,
    Session,
)
from sterilog.reports.common import (
    DASH,
    Period,
    Who,
    plural,
    within,
)
from sterilog.reports.monthly.layout import (
    GTIN_SAMPLE,
    SECTIONS,
    D,
    Fit,
    Page,
    T,
    tbl,
)
from sterilog.reports.monthly.model import (
    AffectedSession,
    DiscardRow,
    MonthlyData,
    RecallRow,
    ReceiptRow,
    StockRow,
)


def receipts(db: DbSession, period: Period, who: Who) -> list[ReceiptRow]:
    """One row per delivery: a box of serialized cartridges is one receipt per scanned unit."""
    group = (
        CartridgeReceipt.at,
        CartridgeLot.gtin,
        CartridgeLot.lot,
        CartridgeLot.expiry,
        CartridgeReceipt.supplier,
        CartridgeReceipt.invoice,
        CartridgeReceipt.operator_id,
    )
    return [
        ReceiptRow(at, gtin, lot, expiry, int(qty), sup, inv, who(op, at), int(first))
        for at, gtin, lot, expiry, sup, inv, op, qty, first in db.execute(
            select(*group, func.sum(CartridgeReceipt.quantity), func.min(CartridgeReceipt.id))
            .join(CartridgeLot, CartridgeLot.id == CartridgeReceipt.lot_id)
            .where(within(CartridgeReceipt.at, period))
            .group_by(*group)
            .order_by(CartridgeReceipt.at, func.min(CartridgeReceipt.id))
        ).all()
    ]


def discards(db: DbSession, period: Period, who: Who) -> list[DiscardRow]:
    """Every unit discarded in the month."""
    voided_discards = facts.voided_ids(db, "discard")
    return [
        DiscardRow(
            int(i), at, gtin, lot, serial, reason, who(op, at), int(i) in voided_discards
        )
        for i, at, gtin, lot, serial, reason, op in db.execute(
            select(
                Discard.id,
                Discard.at,
                CartridgeLot.gtin,
                CartridgeLot.lot,
                CartridgeUnit.serial,
                Discard.reason,
                Discard.operator_id,
            )
            .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
            .join(CartridgeLot, CartridgeLot.id == CartridgeUnit.lot_id)
            .where(within(Discard.at, period))
            .order_by(Discard.at, Discard.id)
        ).all()
    ]


def recalls(db: DbSession, period: Period, who: Who) -> list[RecallRow]:
    """Every recall of the month with the sessions that used the recalled lot (recalls are few:
    one query each)."""
    voided_recalls = facts.voided_ids(db, "recall")
    out: list[RecallRow] = []
    for rid, at, gtin, lot, reason, op in db.execute(
        select(
            Recall.id,
            Recall.at,
            CartridgeLot.gtin,
            CartridgeLot.lot,
            Recall.reason,
            Recall.operator_id,
        )
        .join(CartridgeLot, CartridgeLot.id == Recall.lot_id)
        .where(within(Recall.at, period))
        .order_by(Recall.at, Recall.id)
    ).all():
        affected = tuple(
            AffectedSession(int(s_id), s_at, client, room, who(pid, s_at))
            for s_id, s_at, client, room, pid in db.execute(
                select(
                    Session.id,
                    Session.started_at,
                    Session.client,
                    Room.code,
                    Session.practitioner_id,
                )
                .join(Room, Room.id == Session.room_id)
                .where(Session.gtin == gtin, Session.lot == lot)
                .order_by(Session.started_at, Session.id)
            ).all()
        )
        out.append(
            RecallRow(
                int(rid), at, gtin, lot, reason, who(op, at), int(rid) in voided_recalls, affected
            )
        )
    return out


@dataclass(frozen=True)
class _Moves:
    """Per lot id: units received, used and discarded in the month and up to its end."""

    received: Counter[int]
    received_end: Counter[int]
    used: Counter[int]
    used_end: Counter[int]
    discarded: Counter[int]
    discarded_end: Counter[int]


def _moves(db: DbSession, period: Period) -> _Moves:
    def per_lot(query: Any) -> Counter[int]:
        return Counter({int(lot): int(n) for lot, n in db.execute(query).all()})

    received = per_lot(
        select(CartridgeReceipt.lot_id, func.sum(CartridgeReceipt.quantity))
        .where(within(CartridgeReceipt.at, period))
        .group_by(CartridgeReceipt.lot_id)
    )
    received_end = per_lot(
        select(CartridgeUnit.lot_id, func.count())
        .join(CartridgeReceipt, CartridgeReceipt.id == CartridgeUnit.receipt_id)
        .where(CartridgeReceipt.at < period.end)
        .group_by(CartridgeUnit.lot_id)
    )
    used_q = (
        select(CartridgeUnit.lot_id, func.count())
        .select_from(Session)
        .join(CartridgeUnit, CartridgeUnit.id == Session.unit_id)
        .group_by(CartridgeUnit.lot_id)
    )
    discard_q = (
        select(CartridgeUnit.lot_id, func.count())
        .select_from(Discard)
        .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
        .where(counts(Discard))
        .group_by(CartridgeUnit.lot_id)
    )
    return _Moves(
        received=received,
        received_end=received_end,
        used=per_lot(used_q.where(within(Session.started_at, period))),
        used_end=per_lot(used_q.where(Session.started_at < period.end)),
        discarded=per_lot(discard_q.where(within(Discard.at, period))),
        discarded_end=per_lot(discard_q.where(Discard.at < period.end)),
    )


def stock(db: DbSession, period: Period) -> list[StockRow]:
    """Per lot: movements in the month and units on hand at its end (group-by queries)."""
    m = _moves(db, period)
    recalled_by_end = set(
        db.execute(select(Recall.lot_id).where(Recall.at < period.end, counts(Recall))).scalars()
    )
    recalled_in_month = set(
        db.execute(select(Recall.lot_id).where(within(Recall.at, period), counts(Recall))).scalars()
    )
    out = []
    for raw_id, gtin, lot_code, expiry in db.execute(
        select(CartridgeLot.id, CartridgeLot.gtin, CartridgeLot.lot, CartridgeLot.expiry).order_by(
            CartridgeLot.gtin, CartridgeLot.lot
        )
    ).all():
        lot_id = int(raw_id)
        left = m.received_end[lot_id] - m.used_end[lot_id] - m.discarded_end[lot_id]
        expires_in_month = period.first_day <= expiry <= period.last_day
        expired_before = expiry < period.first_day
        moved = (
            m.received[lot_id]
            or m.used[lot_id]
            or m.discarded[lot_id]
            or lot_id in recalled_in_month
        )
        if not moved and not expires_in_month and (left <= 0 or expired_before):
            continue
        if m.received_end[lot_id] == 0:
            continue
        out.append(
            StockRow(
                gtin=gtin,
                lot=lot_code,
                expiry=expiry,
                received=m.received[lot_id],
                used=m.used[lot_id],
                discarded=m.discarded[lot_id],
                expired=left if expires_in_month else 0,
                recalled=lot_id in recalled_by_end,
                on_hand_at_end=0
                if (expiry <= period.last_day or lot_id in recalled_by_end)
                else left,
            )
        )
    return out


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Cartridge stock."""

    from sterilog.reports.pdf import heading

    story: list[Any] = []
    story += heading(SECTIONS[5])
    for part in (_lot_movements, _deliveries, _discards, _recalls):
        story += part(d, c)
    return story


def _lot_movements(d: MonthlyData, c: Page) -> list[Any]:
    """Movements per lot."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Movements per lot", 2)
    story += tbl(
        [
            "GTIN",
            "Lot",
            "Expiry",
            "Received",
            "Used",
            "Discarded",
            "Expired unused",
            "Recalled",
            "On hand at month end",
        ],
        [
            [
                s.gtin,
                s.lot,
                s.expiry.isoformat(),
                str(s.received),
                str(s.used),
                str(s.discarded),
                str(s.expired),
                "RECALLED" if s.recalled else "no",
                str(s.on_hand_at_end),
            ]
            for s in d.stock
        ],
        [Fit(GTIN_SAMPLE), 30, D, 20, 20, 20, 24, 22, 30],
        width,
        align=["LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "LEFT", "RIGHT"],
    )
    return story


def _deliveries(d: MonthlyData, c: Page) -> list[Any]:
    """Deliveries received."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Deliveries received", 2)
    story += tbl(
        ["Time", "GTIN", "Lot", "Expiry", "Quantity", "Supplier", "Invoice", "Received by"],
        [
            [
                lt("cartridge_receipts", r.first_id, r.at),
                r.gtin,
                r.lot,
                r.expiry.isoformat(),
                str(r.quantity),
                r.supplier or DASH,
                r.invoice or DASH,
                r.operator,
            ]
            for r in d.receipts
        ],
        [T, Fit(GTIN_SAMPLE), 24, D, 16, 50, 40, 40],
        width,
        align=["LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "LEFT", "LEFT"],
    )
    return story


def _discards(d: MonthlyData, c: Page) -> list[Any]:
    """Discarded units."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Discarded units", 2)
    story += tbl(
        ["Time", "GTIN", "Lot", "Serial", "Reason", "By"],
        [
            [
                lt("discards", x.discard_id, x.at),
                x.gtin,
                x.lot,
                x.serial or DASH,
                x.reason,
                x.operator,
            ]
            for x in d.discards
        ],
        [T, Fit(GTIN_SAMPLE), 24, 20, 100, 40],
        width,
        strike_rows=[i for i, x in enumerate(d.discards) if x.voided],
    )
    return story


def _recalls(d: MonthlyData, c: Page) -> list[Any]:
    """Recalls and the sessions that used the recalled lot."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.pdf import esc, heading, para

    t = c.t
    lt = c.lt
    story: list[Any] = []
    story += heading("Recalls and the sessions that used the recalled lot", 2)
    if not d.recalls:
        story.append(para("No recalls this month.", pdf.STYLES.small))
    for r in d.recalls:
        text = (
            f"Recall {r.recall_id}: lot {r.lot} of GTIN {r.gtin}, "
            f"{lt('recalls', r.recall_id, r.at)}, by {r.operator}. "
            f"Reason: {r.reason}. {plural(len(r.sessions), 'session')} used this lot."
        )
        struck = f"<strike>{esc(text)}</strike> (voided)" if r.voided else esc(text)
        story.append(Paragraph(struck, pdf.STYLES.body))
        story += tbl(
            ["Session", "Started", "Client", "Room", "Practitioner"],
            [[str(s.session_id), t(s.at), s.client, s.room, s.practitioner] for s in r.sessions],
            [20, T, 60, 30, 60],
            200 * mm,
            empty="No session used this lot.",
        )
    return story
