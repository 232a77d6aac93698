"""synthgen/anchors/photo_snapping.py: a part moves onto the photo's blob, only alone, enclosed and past the margin."""
import torch

from synthgen.anchors.photo_snapping import PartSnapping, snap_parts


SKIN, HAIR, EYE, U_LIP, L_LIP = 1, 2, 3, 4, 5  # class 0 is background; the parts are 3..5
PARTS = PartSnapping(classes=(EYE, U_LIP, L_LIP), radius=1, margin=0.5, enclosed=0.8)


def _logits(labels: torch.Tensor, k: int = 6) -> torch.Tensor:
    """Logits whose argmax is `labels`, with skin the runner-up everywhere (what a vacated pixel takes)."""
    x = torch.zeros(labels.shape[0], k, *labels.shape[1:])
    x[:, SKIN] = 1.0
    return x.scatter(1, labels[:, None], 3.0)


def _face(eye_row: int, lips_row: int = 15) -> torch.Tensor:
    """A skin photo (1, 3, 24, 24) with a dark 2x3 eye and red lips two rows tall."""
    photo = torch.full((1, 3, 24, 24), 0.4)
    photo[:, :, eye_row: eye_row + 2, 5:8] = -0.8
    photo[:, 0, lips_row: lips_row + 2, 8:16], photo[:, 1:, lips_row: lips_row + 2, 8:16] = 0.9, -0.5
    return photo


def _labels(eye_row: int = 7, lips_row: int = 15, batch: int = 1) -> torch.Tensor:
    labels = torch.full((batch, 24, 24), SKIN, dtype=torch.long)
    labels[:, eye_row: eye_row + 2, 5:8] = EYE
    labels[:, lips_row, 8:16], labels[:, lips_row + 1, 8:16] = U_LIP, L_LIP
    return labels


def test_an_eye_drawn_a_row_below_the_photos_moves_onto_it_and_the_lips_stay_as_drawn():
    labels = _labels(eye_row=7, lips_row=15)
    out = snap_parts(_logits(labels), _face(eye_row=6, lips_row=14), PARTS).argmax(1)
    expected = _labels(eye_row=6, lips_row=15)  # the lips are two classes: their contrast says nothing of each
    assert torch.equal(out, expected)


def test_a_move_must_raise_the_contrast_past_the_margin():
    logits = _logits(_labels(eye_row=7))  # overlaps the photo's eye by one row: one row up is 3.5x the contrast
    photo = _face(eye_row=6)
    kept = snap_parts(logits, photo, PartSnapping(classes=(EYE,), margin=3.0, enclosed=0.8))
    assert torch.equal(kept, logits)
    moved = snap_parts(logits, photo, PartSnapping(classes=(EYE,), margin=2.0, enclosed=0.8))
    assert torch.equal(moved.argmax(1), _labels(eye_row=6))


def test_a_part_on_the_edge_between_two_classes_stays():
    labels = _labels(eye_row=7)
    labels[:, :8, :6] = HAIR  # the eye's ring is now hair on its left and top, skin elsewhere
    labels[:, 7:9, 5:8] = EYE
    out = snap_parts(_logits(labels), _face(eye_row=6), PARTS).argmax(1)
    assert torch.equal(out[labels == EYE], labels[labels == EYE])
    inside = snap_parts(_logits(labels), _face(eye_row=6), PartSnapping(classes=(EYE,), enclosed=0.0)).argmax(1)
    assert not torch.equal(inside, labels)  # without the rule it would move


def test_each_sample_snaps_on_its_own_photo():
    labels = _labels(eye_row=7, batch=2)
    photos = torch.cat([_face(eye_row=6), _face(eye_row=7)])
    both = snap_parts(_logits(labels), photos, PARTS)
    alone = snap_parts(_logits(labels[1:]), photos[1:], PARTS)
    assert torch.equal(both[1:], alone)
    assert torch.equal(both[1:].argmax(1), labels[1:])  # the second photo's eye is where it is drawn
    assert torch.equal(both[:1].argmax(1), _labels(eye_row=6))


def test_a_file_mask_eye_snaps_onto_the_photo_and_the_pixels_it_leaves_take_the_skin_around_it():
    from synthgen.anchors.photo_snapping import snap_target

    target = _labels(eye_row=7, lips_row=15)
    movable = torch.zeros(6, dtype=torch.bool)
    movable[[EYE, U_LIP, L_LIP]] = True
    out = snap_target(target, _face(eye_row=6, lips_row=14), movable, radius=1)
    assert torch.equal(out, _labels(eye_row=6, lips_row=15))  # row 8, which the eye left, is skin again
    assert torch.equal(snap_target(target, _face(eye_row=6), movable, radius=0), target)  # radius 0: off


def test_fit_snaps_each_batch_of_files_on_its_photo_and_is_refused_for_images(tmp_path, monkeypatch):
    import pytest

    import importlib

    from synthgen.anchors.photo_snapping import snap_target
    from _anchor_data import write_images, write_masks
    from paper_fit import fit
    from synthgen.anchors.fit import FitError
    from synthgen.generators.presets import build_generator

    torch.set_num_threads(1)
    gen = build_generator("tiny", seed=0)
    data = write_masks(tmp_path / "d")
    calls = []

    def recording(target, photo, movable, radius):
        calls.append((target.shape, photo.shape, movable.clone(), radius))
        return snap_target(target, photo, movable, radius)

    monkeypatch.setattr(importlib.import_module("synthgen.anchors.fit"), "snap_target", recording)
    fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=2, batch_size=3,
        progress=False, preview_every=0, photo_snap=1, size=16)
    assert len(calls) == 2  # every step, from the first
    target_shape, photo_shape, movable, radius = calls[0]
    assert target_shape == (3, 16, 16) and photo_shape == (3, 3, 16, 16) and radius == 1  # the photo at the anchor's side
    assert movable.any() and not movable.all()  # the files' small classes
    with pytest.raises(FitError, match="photo-snap"):
        fit("sketch", write_images(tmp_path / "img"), gen, tmp_path / "s.safetensors", run_dir=tmp_path / "rs",
            steps=1, photo_snap=1, progress=False)


def test_trim_gives_a_parts_edge_row_that_looks_like_its_surroundings_to_the_large_class():
    from synthgen.anchors.photo_snapping import trim_target

    movable = torch.zeros(6, dtype=torch.bool)
    movable[[EYE, U_LIP, L_LIP]] = True
    target = _labels(eye_row=6, lips_row=15)
    target[:, 14, 8:16] = U_LIP  # the upper lip drawn two rows tall, its top row on skin (the photo's lips: rows 15-16)
    target[:, 8, 5:8] = EYE  # the eye three rows tall, its last row on skin (the photo's eye: rows 6-7)
    expected = _labels(eye_row=6, lips_row=15)
    assert torch.equal(trim_target(target, _face(eye_row=6, lips_row=15), movable), expected)
    assert torch.equal(trim_target(expected, _face(eye_row=6, lips_row=15), movable), expected)  # parts as drawn stay


def test_trim_leaves_a_part_the_photo_does_not_set_off_from_its_surroundings():
    from synthgen.anchors.photo_snapping import trim_target

    movable = torch.zeros(6, dtype=torch.bool)
    movable[[EYE, U_LIP, L_LIP]] = True
    target = _labels(eye_row=12, lips_row=15)  # an eye where the photo shows skin only: nothing says which pixels to keep
    photo = _face(eye_row=2, lips_row=15)
    assert torch.equal(trim_target(target, photo, movable), target)
    both = trim_target(torch.cat([target, _labels(eye_row=2)]), torch.cat([photo, photo]), movable)
    assert torch.equal(both[:1], target)  # each sample on its own


def test_fit_trims_each_batch_after_snapping_and_is_refused_for_images(tmp_path, monkeypatch):
    import importlib

    import pytest

    from _anchor_data import write_images, write_masks
    from paper_fit import fit
    from synthgen.anchors.fit import FitError
    from synthgen.anchors.photo_snapping import trim_target
    from synthgen.generators.presets import build_generator

    torch.set_num_threads(1)
    gen = build_generator("tiny", seed=0)
    fit_module = importlib.import_module("synthgen.anchors.fit")
    calls = []
    monkeypatch.setattr(fit_module, "snap_target", lambda target, *a: calls.append("snap") or target)

    def recording(target, photo, movable):
        calls.append("trim")
        assert photo.shape == (3, 3, 16, 16) and movable.any() and not movable.all()
        return trim_target(target, photo, movable)

    monkeypatch.setattr(fit_module, "trim_target", recording)
    fit("seg", write_masks(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=2,
        batch_size=3, progress=False, preview_every=0, photo_snap=1, photo_trim=True, size=16)
    assert calls == ["snap", "trim", "snap", "trim"]
    with pytest.raises(FitError, match="photo-trim"):
        fit("sketch", write_images(tmp_path / "img"), gen, tmp_path / "s.safetensors", run_dir=tmp_path / "rs",
            steps=1, photo_trim=True, progress=False)
