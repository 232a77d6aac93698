"""scripts/judge_anchor_labels.py --shifts: a part drawn off place is found at its offset."""
from __future__ import annotations

import torch

from script_module import load_script


def test_best_shifts_finds_a_part_drawn_one_row_high_and_leaves_a_placed_part_at_zero():
    best_shifts = load_script("judge_anchor_labels").best_shifts
    truth = torch.zeros(3, 16, 16, dtype=torch.long)
    truth[:, 9:11, 4:12] = 1   # a lip, two rows tall
    truth[:, 2:5, 2:6] = 2     # an eye
    labels = truth.clone()
    labels[labels == 1] = 0
    labels[:, 8:10, 4:12] = 1  # the lip drawn one row above the judge's
    out = best_shifts(labels, truth, ["background", "lip", "eye", "hat"], radius=2)
    assert out["lip"]["best_shift"] == [1, 0] and out["lip"]["iou_at_best"] == 1.0
    assert out["lip"]["iou"] == 0.333  # as drawn: one shared row of the three either covers (rounded)
    assert out["eye"] == {"iou": 1.0, "best_shift": [0, 0], "iou_at_best": 1.0}
    assert "hat" not in out  # a class the judge never finds has no shift to report
