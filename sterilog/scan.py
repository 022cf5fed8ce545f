"""What a barcode scanner types, turned into a `Scan`.

biip does the GS1 parsing (application identifiers, check digits, dates, Digital Link URIs).
This module picks the form (raw element string, human-readable text, Digital Link URI), turns
biip's failures into messages a clinic user can act on, and checks what a cartridge needs.
biip is imported inside `parse_scan` only: importing it costs tens of milliseconds, and this
module sits on the interactive path.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from biip.gs1_element_strings import GS1ElementString

__all__ = ["Scan", "ScanError", "parse_scan"]

GS = "\x1d"

_NAMES = {
    "01": "GTIN",
    "10": "lot",
    "11": "production date",
    "17": "expiry date",
    "21": "serial",
}
_TEXT_MAX = 20
# GS1 General Specifications figure 7.11-1: the only characters allowed in lots and serials.
_CSET_82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
# GS1 Digital Link: the only keys allowed in the path after a GTIN, in this order.
_DL_PATH_AIS = ("01", "22", "10", "21", "235")
_HRI_PAIR = re.compile(r"\((\d+)\)([^(]*)")


class ScanError(ValueError):
    """A scan that cannot be taken as a GS1 unit; the message says why, for the user."""


@dataclass(frozen=True)
class Scan:
    """One scanned unit: the GTIN and its production identifiers."""

    gtin: str
    lot: str | None
    serial: str | None
    expiry: datetime.date | None
    production_date: datetime.date | None
    raw: str


def parse_scan(
    text: str,
    gs_substitute: str | None = None,
    *,
    require_lot_and_expiry: bool = True,
) -> Scan:
    """Read a scan in any supported form; raise `ScanError` saying what is wrong.

    `gs_substitute` is the character a keyboard-wedge scanner types instead of GS (ASCII 29).
    Expiry day `00` means the last day of that month (biip applies this).
    """
    from biip import BiipException

    body = text.strip()  # also drops CR/LF and a stray leading or trailing GS
    if not body:
        raise ScanError("empty scan: the scanner sent nothing")
    try:
        elements, without_gs = _element_strings(body, gs_substitute)
        return _scan(elements, text, require_lot_and_expiry, without_gs=without_gs)
    except ScanError:
        raise
    # biip documents ParseError only, but odd input reaches other errors inside it: a URI
    # with a broken IPv6 host makes urllib raise ValueError, for one.
    except (
        BiipException,
        ArithmeticError,
        AssertionError,
        LookupError,
        TypeError,
        ValueError,
    ) as exc:
        raise ScanError(f"cannot read scan {_show(body)}: {_reason(exc)}") from exc


def _element_strings(
    body: str, gs_substitute: str | None
) -> tuple[Sequence[GS1ElementString], bool]:
    """The element strings, and whether this was a raw scan without any GS."""
    from biip import ParseError
    from biip.symbology import SymbologyIdentifier

    if body.startswith("]"):
        try:
            symbology = SymbologyIdentifier.extract(body)
        except (ParseError, IndexError, ValueError):
            raise ScanError(
                f"not a GS1 barcode: unknown symbology identifier {body[:3]!r}"
            ) from None
        body = body[len(symbology) :]
        if not body.strip():
            raise ScanError(f"empty scan: only the symbology identifier {symbology.value!r}")
    if body[:8].lower().startswith(("https://", "http://")):
        return _from_digital_link(body), False
    if body.startswith("("):
        return _from_hri(body), False
    if gs_substitute:
        body = body.replace(gs_substitute, GS)
    elements = _from_raw(body)
    _refuse_smuggled(body.strip(), elements)
    return elements, GS not in body


SCANNER_FIX = (
    "The scanner is not sending the GS separator: set it to send GS, or a substitute character "
    "and tell sterilog which (`sterilog settings scanner-gs '~'`); check with "
    "`sterilog scanner test`. Until then, type the label's human-readable text, e.g. "
    "(01)...(17)...(10)...(21)..."
)


def smuggled_ai(value: str, present: Iterable[str] = ()) -> tuple[int, str, str] | None:
    """Where a lot or serial holds what parses as a further element string (a scanner that
    dropped GS turns lot `A1B3` + serial `0002` into lot `A1B3210002`): (offset, AI, value)
    of the first such element, or None. Only the AIs a unit carries, and not already in the
    scan (`present`), are looked for."""
    from biip import ParseError
    from biip.gs1_messages import GS1Message

    # Fixed-length AIs first (a real date or a GTIN with its check digit is strong evidence),
    # then a lot or serial, which any text after the AI would make.
    have = set(present)
    for wanted in (("01", "11", "17"), ("10", "21")):
        for i in range(1, len(value) - 2):
            ai = value[i : i + 2]
            if ai not in wanted or ai in have:
                continue
            try:
                elements = GS1Message.parse(value[i:]).element_strings
            except (ParseError, ArithmeticError, LookupError, TypeError, ValueError):
                continue
            if elements and all(_problem(e.ai.ai, e.value, exact=True) is None for e in elements):
                return i, elements[0].ai.ai, elements[0].value
    return None


def _refuse_smuggled(body: str, elements: Sequence[GS1ElementString]) -> None:
    """A raw scan's variable-length field that is not ended by GS and holds a further AI."""
    rest = body
    present = {e.ai.ai for e in elements}
    for element in elements:
        chunk = element.ai.ai + element.value
        if not rest.startswith(chunk):
            return  # biip normalised something; nothing sure to say
        rest = rest[len(chunk) :]
        terminated = rest.startswith(GS)
        rest = rest.lstrip(GS)
        if not element.ai.separator_required or terminated:
            continue
        found = smuggled_ai(element.value, present)
        if found is not None:
            at, ai, data = found
            name = _NAMES.get(element.ai.ai, "field")
            raise ScanError(
                f"{name} ({element.ai.ai}) {_show(element.value)} is not ended by a GS separator"
                f" and contains what reads as {_NAMES[ai]} ({ai}) {_show(data)}: refused, as"
                f" the lot may really be {_show(element.value[:at])}. {SCANNER_FIX}"
            )


def _from_raw(body: str) -> Sequence[GS1ElementString]:
    from biip import ParseError
    from biip.gs1_messages import GS1Message

    try:
        return GS1Message.parse(body).element_strings
    except ParseError as exc:
        raise _explain_raw(body.strip(), exc) from None


def _explain_raw(body: str, exc: Exception) -> ScanError:
    """Find where biip stopped in a raw element string, and say what is wrong there."""
    from biip import ParseError
    from biip.gs1_application_identifiers import GS1ApplicationIdentifier
    from biip.gs1_element_strings import GS1ElementString

    rest = body
    previous: GS1ElementString | None = None
    terminated = True
    while rest:
        try:
            element = GS1ElementString.extract(rest)
        except ParseError:
            break
        rest = rest[len(element) :]
        terminated = not rest or rest.startswith(GS)
        previous = element
        rest = rest.lstrip(GS)
    else:
        return ScanError(f"cannot read scan {_show(body)}: {_reason(exc)}")

    if previous is not None and previous.ai.separator_required and not terminated:
        # biip cut a variable-length field at its maximum length or at a forbidden character;
        # without a GS there, the whole run up to the next GS is that field.
        problem = _problem(previous.ai.ai, previous.value + rest.split(GS, 1)[0], exact=True)
        if problem:
            return ScanError(problem)
    try:
        ai = GS1ApplicationIdentifier.extract(rest)
    except ParseError:
        if previous is None:
            return ScanError(f"not a GS1 barcode: {_show(body)}")
        return ScanError(f"unrecognised data {_show(rest)} after {previous.ai} in the scan")
    data = rest[len(ai) :]
    if ai.separator_required:
        data = data.split(GS, 1)[0]
    problem = _problem(ai.ai, data, exact=ai.separator_required)
    if problem:
        return ScanError(problem)
    if previous is None:
        return ScanError(f"not a GS1 barcode: {_show(body)}")
    return ScanError(f"cannot read {ai} in the scan: {_reason(exc)}")


def _from_hri(body: str) -> Sequence[GS1ElementString]:
    from biip import ParseError
    from biip.gs1_messages import GS1Message

    pairs = [(m[1], m[2]) for m in _HRI_PAIR.finditer(body)]
    try:
        message = GS1Message.parse_hri(body)
    except ParseError as exc:
        raise ScanError(
            _first_problem(pairs) or f"not a valid GS1 human-readable scan: {_reason(exc)}"
        ) from None
    # biip drops whitespace and skips text it cannot match; a label's data never has either.
    rendered = message.as_hri()
    if rendered != body:
        at = next(
            (i for i, (a, b) in enumerate(zip(body, rendered, strict=False)) if a != b),
            min(len(body), len(rendered)),
        )
        raise ScanError(
            _first_problem(pairs) or f"unrecognised data {_show(body[at:])} in the scan"
        )
    return message.element_strings


def _from_digital_link(body: str) -> Sequence[GS1ElementString]:
    from biip import ParseError
    from biip.gs1_digital_link_uris import GS1DigitalLinkURI

    try:
        return GS1DigitalLinkURI.parse(body).element_strings
    except ParseError as exc:
        path, query = _digital_link_pairs(body)
        problem = _first_problem(path + query)
        misplaced = next((ai for ai, _ in path if ai not in _DL_PATH_AIS), None)
        if problem is None and misplaced in _NAMES:
            problem = (
                f"{_NAMES[misplaced]} ({misplaced}) belongs in the query string of a"
                f" Digital Link URI (?{misplaced}=...), not in its path"
            )
        raise ScanError(problem or f"not a valid GS1 Digital Link URI: {_reason(exc)}") from None


def _digital_link_pairs(body: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (AI, value) pairs of the path and the query of a URI biip refused, to say why."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(body)
    segments = parts.path.split("/")
    start = segments.index("01") if "01" in segments else len(segments)
    values = [unquote(s) for s in segments[start:]]
    # biip pads a GTIN-13/12/8 in the path to 14 digits, as the Digital Link standard says.
    path = [
        (ai, v.zfill(14) if ai == "01" else v)
        for ai, v in zip(values[::2], values[1::2], strict=False)
    ]
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.isdigit()]
    return path, query


def _first_problem(pairs: Iterable[tuple[str, str]]) -> str | None:
    return next((p for ai, data in pairs if (p := _problem(ai, data, exact=True))), None)


def _problem(ai: str, data: str, *, exact: bool) -> str | None:
    """What is wrong with one element, or None if biip takes it (or it is not ours to explain).

    `exact=False` means `data` runs on past a fixed-length field's end (raw form).
    """
    from biip import ParseError
    from biip.gs1_application_identifiers import GS1ApplicationIdentifier
    from biip.gs1_element_strings import GS1ElementString

    try:
        known = GS1ApplicationIdentifier.extract(ai).ai == ai
    except ParseError:
        known = False
    if not known:
        return f"unknown GS1 application identifier ({ai})"
    name = _NAMES.get(ai)
    if ai == "01":
        data = data if exact else data[:14]
        if len(data) != 14 or not (data.isascii() and data.isdigit()):
            return f"GTIN in (01) must be 14 digits, got {_show(data)}"
        return None
    if ai in ("11", "17"):
        data = data if exact else data[:6]
        if len(data) != 6 or not (data.isascii() and data.isdigit()):
            return f"{name} in ({ai}) must be 6 digits YYMMDD, got {_show(data)}"
        try:
            GS1ElementString.parse(ai + data)
        except ParseError:
            return f"{name} {data} is not a real date"
        return None
    if ai in ("10", "21"):
        if not data:
            return f"{name} in ({ai}) is empty"
        if len(data) > _TEXT_MAX:
            return f"{name} {_show(data)} is longer than {_TEXT_MAX} characters ({len(data)})"
        bad = next((c for c in data if c not in _CSET_82), None)
        if bad is not None:
            return (
                f"{name} {_show(data)} contains {bad!r}, which GS1 does not allow"
                " (AI encodable character set 82)"
            )
    return None


def _scan(
    elements: Sequence[GS1ElementString], raw: str, require: bool, *, without_gs: bool
) -> Scan:
    from biip.checksums import gs1_standard_check_digit

    found: dict[str, GS1ElementString] = {}
    for element in elements:
        code = element.ai.ai
        if not element.value.isascii():
            # Python's \d in biip's patterns also matches non-ASCII digits.
            raise ScanError(f"({code}) contains characters outside ASCII: {_show(element.value)}")
        first = found.setdefault(code, element)
        if first.value != element.value:
            raise ScanError(
                f"{_NAMES.get(code, 'element')} ({code}) appears twice with different values:"
                f" {_show(first.value)} and {_show(element.value)}"
            )

    gtin_element = found.get("01")
    if gtin_element is None:
        raise ScanError("missing GTIN (01)")
    value = gtin_element.value
    if gtin_element.gtin is None:
        expected = gs1_standard_check_digit(value[:-1])
        if str(expected) != value[-1]:
            raise ScanError(
                f"GTIN {value} has a wrong check digit: expected {expected}, got {value[-1]}"
            )
        raise ScanError(f"GTIN {value} is not valid: {gtin_element.gtin_error}")
    if not value.strip("0"):
        raise ScanError(f"GTIN {value} is not a real GTIN (all zeros)")

    lot, expiry = found.get("10"), found.get("17")
    if require:
        missing = [f"{_NAMES[c]} ({c})" for c, e in (("10", lot), ("17", expiry)) if e is None]
        if missing:
            raise ScanError("missing " + " and ".join(missing) + _gs_hint(found, without_gs))
    serial, production = found.get("21"), found.get("11")
    return Scan(
        gtin=gtin_element.gtin.as_gtin_14(),
        lot=lot.value if lot else None,
        serial=serial.value if serial else None,
        expiry=expiry.date if expiry else None,
        production_date=production.date if production else None,
        raw=raw,
    )


def _gs_hint(found: dict[str, GS1ElementString], without_gs: bool) -> str:
    # A scanner that drops GS makes a lot or serial swallow every field after it.
    greedy = [e for e in found.values() if e.ai.separator_required]
    if without_gs and greedy:
        last = greedy[-1]
        return (
            f"; is the scanner sending the GS separator? {_NAMES.get(last.ai.ai, 'field')}"
            f" {last.ai} was read as {_show(last.value)}"
        )
    return ""


def _reason(exc: BaseException) -> str:
    return str(exc).rstrip(".") or type(exc).__name__


def _show(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")
