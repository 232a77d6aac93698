"""scripts/probe_judge_ceiling.py: the files-target probe with fit's calibration runs as documented."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_files_probe_with_calibration_reports_every_class():
    # docs/anchors.md's command, shrunk: a fresh regressor on the seg files at the shipped
    # encoder's latents, class-balanced, calibrated on sampled latents, scored against the judge.
    out = subprocess.run([sys.executable, "scripts/probe_judge_ceiling.py", "--targets", "files", "--class-balance", "0.5",
                          "--feature-noise", "2", "--calibrate", "4", "--steps", "2", "--n-eval", "4", "--n-files", "32"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["targets"] == "files" and report["calibrate"] == 4 and report["steps"] == 2
    assert 0.0 <= report["miou"] <= 1.0 and "l_eye" in report["iou"]
