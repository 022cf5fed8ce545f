"""Where the real autoclave records live: ../shared/samples/autoclave next to the repository
(see its README for provenance and licences). They are used as they are, never copied.

STERILOG_SAMPLES overrides the location (the folder that holds `autoclave/`). Missing samples
are a failure, not a skip: CI runs next to `shared/` and must exercise them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def samples_dir() -> Path:
    env = os.environ.get("STERILOG_SAMPLES")
    if env:
        found = Path(env) / "autoclave"
        if not found.is_dir():
            pytest.fail(f"STERILOG_SAMPLES={env} has no autoclave/ folder")
        return found
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "samples" / "autoclave"
        if candidate.is_dir():
            return candidate
    pytest.fail(
        "the autoclave samples (shared/samples/autoclave) were not found above "
        f"{Path(__file__).parent}; set STERILOG_SAMPLES to the folder that holds autoclave/"
    )


def sample(name: str) -> Path:
    """A sample by its path under autoclave/, e.g. 'dac-universal/DAC.Log'."""
    path = samples_dir() / name
    if not path.is_file():
        pytest.fail(f"sample {path} is missing")
    return path


DAC = "dac-universal"
TUTT = "tuttnauer-elara11"
ALL_FILES = [
    f"{TUTT}/000100.txt",
    f"{TUTT}/01.txt",
    f"{TUTT}/02.txt",
    f"{DAC}/DACLogOK.TXT",
    f"{DAC}/DACLogFehler.TXT",
    f"{DAC}/DACLogFehlerII.TXT",
    f"{DAC}/DACLogFehlerIII.TXT",
    f"{DAC}/DACLogFehlerIV.TXT",
    f"{DAC}/DAC.Log",
]
