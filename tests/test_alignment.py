"""Part alignment (synthgen/anchors/alignment.py): a file's small parts move onto where the
regressor reads them, by at most the radius, keeping their shape; nothing else changes."""
import pytest
import torch

from _anchor_data import write_images, write_masks
from synthgen.anchors.alignment import align_target, fill_static, max3x3, movable_classes
from synthgen.anchors.fit import FitError, fit
from synthgen.generators.presets import build_generator

SKIN, EYE, LIP = 1, 2, 3
MOVABLE = torch.tensor([False, False, True, True])


def _face(eye_at=(10, 10), lip_at=(22, 12)) -> torch.Tensor:
    """One 32 px mask: background, a skin square, a 3x4 eye and a 2x8 lip."""
    m = torch.zeros(32, 32, dtype=torch.long)
    m[4:28, 4:28] = SKIN
    m[eye_at[0]:eye_at[0] + 3, eye_at[1]:eye_at[1] + 4] = EYE
    m[lip_at[0]:lip_at[0] + 2, lip_at[1]:lip_at[1] + 8] = LIP
    return m


def _log_probs(mask: torch.Tensor, k: int = 4) -> torch.Tensor:
    """A confident regressor whose argmax is `mask`."""
    onehot = torch.nn.functional.one_hot(mask, k).permute(0, 3, 1, 2).float()
    return torch.log(0.9 * onehot + 0.1 / k)


def _batch(displaced: torch.Tensor, others: int = 4) -> torch.Tensor:
    """`others` faces where R agrees with the file, then the displaced one."""
    return torch.cat([_face()[None].expand(others, -1, -1), displaced[None]])


def test_a_displaced_part_moves_onto_the_regressors_output():
    target = _batch(_face())
    seen = _batch(_face(eye_at=(12, 9), lip_at=(21, 12)))  # in the last file R reads the eye 2 down, 1 left; the lip 1 up
    aligned = align_target(target, _log_probs(seen), MOVABLE, radius=3)
    assert torch.equal(aligned, seen)
    assert (aligned[-1] == EYE).sum() == (target[-1] == EYE).sum()  # shape and size kept


def test_a_shift_shared_by_the_whole_batch_is_not_followed():
    """Centered: R's map drifting off the files by one offset is not a per-file misplacement."""
    target = _face()[None].expand(5, -1, -1)
    seen = _face(eye_at=(12, 10))[None].expand(5, -1, -1)  # every file's eye read 2 px lower
    assert torch.equal(align_target(target, _log_probs(seen), MOVABLE, radius=3), target)
    assert torch.equal(align_target(target, _log_probs(seen), MOVABLE, radius=3, centered=False), seen)


def test_a_part_moves_by_at_most_the_radius():
    target = _batch(_face())
    seen = _batch(_face(eye_at=(13, 10)))  # 3 px down
    aligned = align_target(target, _log_probs(seen), MOVABLE, radius=2)
    rows = (aligned[-1] == EYE).nonzero()[:, 0]
    assert int(rows.min()) == 12  # moved the full 2 px towards it, no further
    far = _batch(_face(eye_at=(20, 10)))  # out of reach: no shift within the radius gains, the file stays
    assert torch.equal(align_target(target, _log_probs(far), MOVABLE, radius=2), target)
    assert torch.equal(align_target(target, _log_probs(seen), MOVABLE, radius=0), target)


def test_without_evidence_the_file_stays_as_it_is():
    target = torch.stack([_face(), _face(eye_at=(8, 14))])
    uniform = torch.zeros(2, 4, 32, 32)  # every class equally likely: no shift gains anything
    assert torch.equal(align_target(target, uniform, MOVABLE, radius=3), target)
    # static classes never move: a regressor that reads a shifted skin square changes nothing
    assert torch.equal(align_target(target, _log_probs(target.roll(2, dims=1)), torch.tensor([False] * 4), 3), target)


def test_vacated_pixels_take_the_surrounding_class():
    target = _face()[None]
    filled = fill_static(target, MOVABLE)
    assert set(filled.unique().tolist()) == {0, SKIN}
    assert (filled[0, 10:13, 10:14] == SKIN).all() and torch.equal(filled[target != EYE], target[target != EYE].clamp(max=SKIN))


def test_a_pixel_between_two_static_classes_takes_the_lower_id_and_a_map_without_any_stays_zero():
    movable = torch.tensor([False, False, True, False])
    target = torch.zeros(2, 5, 5, dtype=torch.long)
    target[0, :, :2], target[0, :, 2], target[0, :, 3:] = 3, 2, 1  # column 2 is a part one pixel from class 3 and from class 1
    target[1] = 2  # nothing static at all
    filled = fill_static(target, movable)
    assert (filled[0, :, 2] == 1).all() and torch.equal(filled[0, :, :2], target[0, :, :2])
    assert (filled[1] == 0).all()


def test_max3x3_is_a_3x3_max_pool_of_any_dtype():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 7)
    assert torch.equal(max3x3(x), torch.nn.functional.max_pool2d(x, 3, 1, 1))
    m = torch.rand(2, 3, 9, 7) > 0.8
    assert torch.equal(max3x3(m), torch.nn.functional.max_pool2d(m.float(), 3, 1, 1) > 0)
    assert torch.equal(max3x3(x[0, 0]), torch.nn.functional.max_pool2d(x[:1, :1], 3, 1, 1)[0, 0])  # a plain (H, W) map too


def test_movable_classes_are_the_small_present_ones():
    counts = torch.tensor([5000.0, 4000.0, 50.0, 10.0, 0.0])
    assert movable_classes(counts).tolist() == [False, False, True, True, False]  # absent classes have nothing to move


def test_fit_with_alignment_runs_resumes_and_is_refused_for_images(tmp_path):
    torch.set_num_threads(1)
    gen = build_generator("tiny", seed=0)
    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=3, progress=False, preview_every=0, checkpoint_every=3, align_radius=2, align_start=2)
    from test_fit_sampled_latents import assert_resumes_exactly
    assert_resumes_exactly(tmp_path / "resume", gen, align_radius=2, align_start=2)
    out = fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", steps=4, **opts)
    assert out.exists()
    with pytest.raises(FitError, match="align-radius"):
        fit("sketch", write_images(tmp_path / "img"), gen, tmp_path / "s.safetensors", run_dir=tmp_path / "rs",
            steps=1, align_radius=2, progress=False)
