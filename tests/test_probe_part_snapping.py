"""scripts/probe_part_snapping.py: a part group moves onto the photo's blob, as a whole, only past the margin."""
from __future__ import annotations

import pytest
import torch

from script_module import load_script

SKIN, EYE, U_LIP, L_LIP = 1, 2, 3, 4  # class 0 is background; the parts are 2..4


@pytest.fixture(scope="module")
def script():
    return load_script("probe_part_snapping")


def _logits(labels: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Logits whose argmax is `labels`, with skin the runner-up everywhere (what a vacated pixel takes)."""
    x = torch.zeros(labels.shape[0], k, *labels.shape[1:])
    x[:, SKIN] = 1.0
    return x.scatter(1, labels[:, None], 3.0)


def _face(eye_row: int, lips_row: int) -> torch.Tensor:
    """A skin photo (1, 3, 24, 24) with a dark 2x3 eye and a red two-row mouth."""
    photo = torch.full((1, 3, 24, 24), 0.4)
    photo[:, :, eye_row: eye_row + 2, 5:8] = -0.8
    photo[:, 0, lips_row: lips_row + 2, 8:16], photo[:, 1:, lips_row: lips_row + 2, 8:16] = 0.9, -0.5
    return photo


def test_a_part_drawn_a_row_off_its_blob_moves_onto_it_and_a_placed_group_stays_whole(script):
    labels = torch.full((1, 24, 24), SKIN, dtype=torch.long)
    labels[:, 7:9, 5:8] = EYE  # drawn one row below the photo's eye (rows 6-7)
    labels[:, 15, 8:16], labels[:, 16, 8:16] = U_LIP, L_LIP  # the lips, drawn where the photo has them
    snap = script.PartSnapping(classes=(EYE, U_LIP, L_LIP), radius=1, margin=0.25)
    out = script.snap_parts(_logits(labels), _face(eye_row=6, lips_row=15), snap).argmax(1)
    expected = torch.full_like(labels, SKIN)
    expected[:, 6:8, 5:8] = EYE
    expected[:, 15, 8:16], expected[:, 16, 8:16] = U_LIP, L_LIP
    assert torch.equal(out, expected)


def test_a_move_that_does_not_raise_the_contrast_past_the_margin_is_not_made(script):
    labels = torch.full((1, 24, 24), SKIN, dtype=torch.long)
    labels[:, 7:9, 5:8] = EYE  # overlaps the photo's eye by one row: moving up raises the contrast 3.5x
    logits = _logits(labels)
    photo = _face(eye_row=6, lips_row=15)
    kept = script.snap_parts(logits, photo, script.PartSnapping(classes=(EYE,), radius=1, margin=3.0))
    assert torch.equal(kept, logits)
    moved = script.snap_parts(logits, photo, script.PartSnapping(classes=(EYE,), radius=1, margin=2.0))
    assert not torch.equal(moved.argmax(1), labels)


def test_each_sample_snaps_on_its_own_photo(script):
    labels = torch.full((2, 24, 24), SKIN, dtype=torch.long)
    labels[:, 7:9, 5:8] = EYE
    photos = torch.cat([_face(eye_row=6, lips_row=15), _face(eye_row=7, lips_row=15)])
    snap = script.PartSnapping(classes=(EYE,), radius=1, margin=0.25)
    both = script.snap_parts(_logits(labels), photos, snap)
    alone = script.snap_parts(_logits(labels[1:]), photos[1:], snap)
    assert torch.equal(both[1:].argmax(1), alone.argmax(1))
    assert torch.equal(both[1:].argmax(1), labels[1:])  # the second photo's eye is exactly where it is drawn
    assert not torch.equal(both[:1].argmax(1), labels[:1])
