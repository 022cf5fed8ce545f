"""The pure format parsers, one test per real sample file (../shared/samples/autoclave)."""

from __future__ import annotations

import datetime as dt

import pytest
from autoclave_samples import ALL_FILES, DAC, TUTT, sample, samples_dir

from sterilog.importers import ImportFormatError, detect, hold_stats, parse
from sterilog.importers.common import decode


def _device(*parts: int) -> dt.datetime:
    """A device clock reading: naive, as the record prints it."""
    return dt.datetime(*parts)  # noqa: DTZ001


def _f_to_c(f: float) -> float:
    return (f - 32) * 5 / 9


def test_every_sample_file_in_the_folder_is_covered() -> None:
    on_disk = {
        f"{p.parent.name}/{p.name}"
        for p in samples_dir().glob("*/*")
        if p.name not in {"LICENSE", "README.md"}
    }
    assert on_disk == set(ALL_FILES)


def test_000100_is_a_complete_tuttnauer_cycle_with_the_hold_computed_from_the_s_rows() -> None:
    data = sample(f"{TUTT}/000100.txt").read_bytes()
    assert b"\xb0F" in data  # Latin-1 degree sign, as the device writes it
    fmt, cycles = parse(data)
    assert fmt == "tuttnauer-txt"
    [c] = cycles
    assert (c.serial, c.model, c.cycle_no) == ("00000000", "ELARA11", 100)
    assert c.started_at == _device(2017, 1, 1, 16, 23, 33)
    assert c.ended_at == _device(2017, 1, 1, 17, 16, 44)
    assert c.program == "WRAPPED INSTU (Customized)"
    assert c.set_temp_c == pytest.approx(_f_to_c(273.2), abs=0.001)
    assert c.set_hold_min == 5.0
    assert c.device_ok and c.complete and not c.air_removal_test
    # The trace, read independently here: S rows are 00:26:16 .. 00:31:16.
    s_rows = [
        line.split()
        for line in data.decode("latin-1").splitlines()
        if line.startswith("S ")
    ]
    temps_f = [float(r[2]) for r in s_rows]
    h = hold_stats(c.samples, c.set_temp_c or 0)
    assert h.samples == len(s_rows) == 7
    assert h.hold_s == 300.0  # 00:26:16 -> 00:31:16, every S row above 273.2 °F
    assert h.temp_min_c == pytest.approx(_f_to_c(min(temps_f)), abs=0.001)  # 275.4 °F
    assert h.temp_max_c == pytest.approx(_f_to_c(max(temps_f)), abs=0.001)  # 275.9 °F
    assert min(temps_f) == 275.4 and max(temps_f) == 275.9
    # psig -> kPa gauge: 30.88 .. 31.50 psig
    assert h.pressure_min_kpa == pytest.approx(30.88 * 6.894757, abs=0.01)
    assert h.pressure_max_kpa == pytest.approx(31.50 * 6.894757, abs=0.01)
    # The heat-up row at 275.2 °F just before the S phase does not count towards the hold.
    assert any(s.phase == "H" and s.temp_c > 134 for s in c.samples)


def test_vacuum_readings_in_inhg_are_negative_gauge_pressure() -> None:
    _, [c] = parse(sample(f"{TUTT}/000100.txt").read_bytes())
    first_vacuum = next(s for s in c.samples if s.pressure_kpa is not None and s.pressure_kpa < 0)
    assert first_vacuum.pressure_kpa == pytest.approx(-24.78 * 3.386389, abs=0.01)


def test_01_anonymised_readings_give_no_hold() -> None:
    _, [c] = parse(sample(f"{TUTT}/01.txt").read_bytes())
    assert (c.serial, c.cycle_no, c.air_removal_test) == ("88888888", 2, False)
    assert hold_stats(c.samples, 134.0).hold_s == 0.0


def test_02_is_a_bowie_dick_air_removal_test() -> None:
    _, [c] = parse(sample(f"{TUTT}/02.txt").read_bytes())
    assert (c.cycle_no, c.program, c.air_removal_test) == (1, "Bowie and Dick", True)


def test_dac_ok_record_reads_the_hold_trace_and_the_device_duration() -> None:
    fmt, [c] = parse(sample(f"{DAC}/DACLogOK.TXT").read_bytes())
    assert fmt == "dac-printer"
    assert (c.serial, c.cycle_no, c.set_temp_c, c.set_hold_min) == ("601362", 13, 134.0, 3.0)
    assert c.device_ok and c.device_reason is None
    assert c.device_hold_s == 191  # "Dauer (m-s) 03-11", read for reference only
    h = hold_stats(c.samples, 134.0)
    assert h.hold_s == 182.0  # 01:05:30 -> 01:08:32, the printed samples
    assert (h.temp_min_c, h.temp_max_c) == (135.3, 135.4)
    assert (h.pressure_min_kpa, h.pressure_max_kpa) == (318.0, 321.0)


@pytest.mark.parametrize(
    ("name", "cycle_no", "codes", "reason"),
    [
        ("DACLogFehler.TXT", 14, (97,), "Error code 97 (Aussenreinigung: FEHL)"),
        (
            "DACLogFehlerII.TXT",
            456,
            (93, 72),
            "Error code 93 (Sterilisation: FEHL); then Error code 72",
        ),
        (
            "DACLogFehlerIII.TXT",
            1015,
            (92,),
            "Error code 92; record truncated (no Zyklusende line)",
        ),
        ("DACLogFehlerIV.TXT", 1100, (81,), "Error code 81 (Start: FEHL)"),
    ],
)
def test_dac_failed_records_carry_the_device_reason(
    name: str, cycle_no: int, codes: tuple[int, ...], reason: str
) -> None:
    _, [c] = parse(sample(f"{DAC}/{name}").read_bytes())
    assert c.cycle_no == cycle_no
    assert not c.device_ok
    assert c.error_codes == codes
    assert c.device_reason == reason


def test_the_21_second_hold_is_21_seconds_by_the_device_and_shorter_by_the_trace() -> None:
    _, [c] = parse(sample(f"{DAC}/DACLogFehlerII.TXT").read_bytes())
    assert c.device_hold_s == 21
    assert hold_stats(c.samples, 134.0).hold_s < 180


def test_truncated_dac_record_is_incomplete() -> None:
    _, [c] = parse(sample(f"{DAC}/DACLogFehlerIII.TXT").read_bytes())
    assert not c.complete and c.ended_at is None and c.samples == ()


def test_dac_log_yields_its_five_cycles_without_the_logger_noise() -> None:
    data = sample(f"{DAC}/DAC.Log").read_bytes()
    assert "geöffnet" in decode(data)  # UTF-8 noise lines
    fmt, cycles = parse(data)
    assert fmt == "dac-printer"
    assert [c.cycle_no for c in cycles] == [13, 14, 15, 16, 17]
    assert [c.device_ok for c in cycles] == [True, False, True, True, True]
    lines = decode(data).split("\n")
    for c in cycles:
        body = lines[c.first_line - 1 : c.last_line]
        assert "DAC Universal" in body[0]
        assert not any("COM3" in x or "PSEventJob" in x or "Port" in x for x in body)
    # The same cycles as the single-record files, read the same way.
    _, [ok] = parse(sample(f"{DAC}/DACLogOK.TXT").read_bytes())
    assert cycles[0].samples == ok.samples


def test_a_cycle_past_midnight_keeps_its_date_order() -> None:
    text = sample(f"{DAC}/DACLogOK.TXT").read_text("ascii").replace("00:53:20", "23:53:20")
    text = text.replace("Start              00:53:52", "Start              23:53:52")
    _, [c] = parse(text.encode())
    assert c.started_at == _device(2016, 3, 16, 23, 53, 20)
    assert c.samples[0].at == _device(2016, 3, 17, 1, 5, 30)


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_sample_is_detected_and_parsed(name: str) -> None:
    text = decode(sample(name).read_bytes())
    assert detect(text) == ("dac-printer" if name.startswith(DAC) else "tuttnauer-txt")
    fmt, cycles = parse(sample(name).read_bytes(), "auto")
    assert cycles and all(c.format == fmt for c in cycles)


def test_an_unknown_file_is_a_clear_error() -> None:
    with pytest.raises(ImportFormatError, match="not a cycle record of a supported autoclave"):
        parse(b"%PDF-1.4 hello")


def test_the_wrong_format_finds_no_record() -> None:
    with pytest.raises(ImportFormatError, match="no dac-printer cycle record"):
        parse(sample(f"{TUTT}/000100.txt").read_bytes(), "dac-printer")


def test_a_file_with_two_tuttnauer_records_yields_both() -> None:
    data = sample(f"{TUTT}/02.txt").read_bytes() + sample(f"{TUTT}/01.txt").read_bytes()
    _, cycles = parse(data)
    assert [(c.cycle_no, c.air_removal_test) for c in cycles] == [(1, True), (2, False)]


def test_a_tuttnauer_record_cut_before_its_status_is_truncated() -> None:
    text = sample(f"{TUTT}/000100.txt").read_bytes().decode("latin-1")
    cut = text[: text.index("D 00:35:41")]
    _, [c] = parse(cut.encode("latin-1"))
    assert not c.complete and not c.device_ok
    assert c.device_reason == "record truncated (no Status line)"


@pytest.mark.parametrize(
    ("temps", "hold"),
    [
        ((134.0, 134.0, 134.0), 60.0),  # exactly at the program temperature counts
        ((134.0, 133.9, 134.0), 0.0),  # a dip breaks the run
        ((133.0, 134.5, 134.5), 30.0),  # the hold starts at the first sample at temperature
        ((135.0, 135.0, 120.0, 135.0, 135.0, 135.0), 60.0),  # the longest run counts
    ],
)
def test_the_hold_is_the_longest_unbroken_run_at_or_above_the_temperature(
    temps: tuple[float, ...], hold: float
) -> None:
    from sterilog.importers import Sample

    t0 = _device(2026, 1, 1, 10, 0, 0)
    samples = tuple(
        Sample("S", t0 + dt.timedelta(seconds=30 * i), temp, None) for i, temp in enumerate(temps)
    )
    heat_up = (Sample("H", t0 - dt.timedelta(minutes=5), 136.0, None),)
    assert hold_stats(heat_up + samples, 134.0).hold_s == hold
