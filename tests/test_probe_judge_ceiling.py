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


def test_the_render_probe_with_fits_target_processing_runs_and_records_it():
    # docs/anchors.md's perfect-inversion command, shrunk: render targets snapped onto G's photo
    # and aligned to the probe's output as fit moves its files' parts.
    out = subprocess.run([sys.executable, "scripts/probe_judge_ceiling.py", "--targets", "render", "--class-balance", "0.5",
                          "--feature-noise", "2", "--photo-snap", "1", "--align-radius", "2", "--align-start", "1",
                          "--calibrate", "4", "--steps", "2", "--n-eval", "4", "--batch-size", "4"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert (report["targets"], report["photo_snap"], report["align_radius"], report["align_start"]) == ("render", 1, 2, 1)
    assert 0.0 <= report["miou"] <= 1.0 and "u_lip" in report["iou"]


def test_target_processing_with_judge_targets_is_refused_in_one_line():
    out = subprocess.run([sys.executable, "scripts/probe_judge_ceiling.py", "--photo-snap", "1", "--steps", "1"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "drop them with --targets judge" in out.stderr
    assert "Traceback" not in out.stderr
