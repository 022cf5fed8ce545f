"""Input checks shared by every service: IDs, free text, numbers, choices."""

from __future__ import annotations

import math
import unicodedata

from sterilog.errors import UserError

MAX_ID = 200
MAX_TEXT = 2000


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def _odd_space(text: str) -> str | None:
    """The first space-like or invisible format character other than the plain space (a
    no-break space makes a second "Clinell Universal" that looks identical in every list)."""
    for c in text:
        if c != " " and c != "\t" and unicodedata.category(c) in ("Zs", "Cf", "Zl", "Zp"):
            return f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed character')}"
    return None


def nfc(value: str) -> str:
    """Stored text is NFC: what prints alike is stored alike (SPEC §6.1, issue 14)."""
    if any("\udc80" <= c <= "\udcff" for c in value):
        raise UserError("text is not valid UTF-8; set the terminal or scanner to UTF-8")
    return unicodedata.normalize("NFC", value)


def ident(value: str | None, what: str) -> str:
    """IDs are case-sensitive free text without whitespace or control characters (SPEC §6.1)."""
    if value is None or value == "":
        raise UserError(f"{what} must not be empty")
    value = nfc(value)
    if any(c.isspace() for c in value):
        raise UserError(f"{what} {value!r} must not contain whitespace")
    if _has_control(value):
        raise UserError(f"{what} {value!r} must not contain control characters")
    if len(value) > MAX_ID:
        raise UserError(f"{what} is longer than {MAX_ID} characters")
    return value


def text(
    value: str | None, what: str, *, required: bool = True, limit: int = MAX_TEXT
) -> str | None:
    if value is None or value.strip() == "":
        if required:
            raise UserError(f"{what} must not be empty")
        return None
    value = nfc(value)
    if any(unicodedata.category(c) == "Cc" and c not in "\t" for c in value):
        raise UserError(f"{what} must not contain control characters")
    odd = _odd_space(value)
    if odd is not None:
        raise UserError(
            f"{what} must not contain {odd}: use a plain space, or remove the invisible character"
        )
    if len(value) > limit:
        raise UserError(f"{what} is longer than {limit} characters")
    return value.strip()


def name(value: str | None, what: str, *, required: bool = True) -> str | None:
    """A name or reference that people search for (client references, product names): spaces
    are fine, but tabs and invisible characters are refused — `C-1` and `C-1` followed by a
    zero-width space print alike, yet `trace client C-1` would never find the second."""
    odd = None if value is None else _odd_space(value)
    if odd is not None:
        raise UserError(
            f"{what} must not contain {odd}: use a plain space, or remove the invisible character"
        )
    if value is not None and any(
        c == "\t" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value
    ):
        raise UserError(f"{what} must not contain tabs, control or invisible characters")
    return text(value, what, required=required, limit=MAX_ID)


def number(
    value: float | None,
    what: str,
    *,
    low: float,
    high: float,
    unit: str = "",
    inclusive_low: bool = False,
) -> float:
    """A finite number within a plausible range; nan, inf, negatives and absurd sizes refused."""
    if value is None:
        raise UserError(f"{what} is required")
    if isinstance(value, bool) or not math.isfinite(value):
        raise UserError(f"{what} must be a finite number, got {value}")
    ok_low = value >= low if inclusive_low else value > low
    if not ok_low or value > high:
        lo = "at least" if inclusive_low else "more than"
        raise UserError(
            f"{what} must be {lo} {low:g} and at most {high:g}{unit}, got {value:g}{unit}"
        )
    return float(value)


def depth(value: float, what: str) -> float:
    return number(value, what, low=DEPTH_MM[0], high=DEPTH_MM[1], unit=" mm")


def choice(value: str, what: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise UserError(f"{what} must be one of {', '.join(options)}; got {value!r}")
    return value


# Plausible ranges. Anything outside is a typo, not a measurement.
DEPTH_MM = (0.0, 5.0)  # microneedling pens go to ~3 mm; 5 mm leaves room for any device label
TEMP_C = (0.0, 200.0)
HOLD_MIN = (0.0, 600.0)
CONTACT_MIN = (0.5, 240.0)  # inclusive: no disinfectant label claims less than 30 s
QUANTITY = (1, 100_000)
