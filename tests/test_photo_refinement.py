"""The photo refinement of a mask anchor's large classes (anchors/photo_refinement.py)."""
import pytest
import torch

from _anchor_data import write_images, write_masks
from synthgen.anchors.anchor import AnchorFileError, load_anchor, save_anchor
from paper_fit import fit
from synthgen.anchors.fit import FitError
from synthgen.anchors.photo_refinement import PhotoRefinement, large_class_refinement, refine_logits
from synthgen.generators.presets import build_generator

SKIN, HAIR, BROW = 0, 1, 2  # a 3-class toy: two large classes and one part


@pytest.fixture(scope="module")
def gen():
    torch.set_num_threads(1)
    return build_generator("tiny", seed=0)


def _two_tone(side: int = 16, edge: int = 8):
    """A photo dark left of column `edge`, bright right of it; logits that call columns up to
    edge + 2 hair (two columns past the photo's edge), the rest skin, with one brow pixel."""
    photo = torch.full((1, 3, side, side), 0.6)
    photo[..., :edge] = -0.6
    logits = torch.zeros(1, 3, side, side)
    logits[:, HAIR, :, : edge + 2] = 2.0
    logits[:, SKIN, :, edge + 2:] = 2.0
    logits[:, BROW, 4, 12] = 5.0  # a part inside the skin
    return photo, logits


def test_large_classes_are_those_present_and_not_moved_by_part_alignment():
    counts = torch.tensor([600.0, 370.0, 29.0, 1.0, 0.0])  # shares 0.6, 0.37, 0.029, 0.001, absent
    assert large_class_refinement(counts).classes == (0, 1, 2)
    record = large_class_refinement(counts).to_dict()
    assert PhotoRefinement.from_dict(record) == large_class_refinement(counts)


def test_a_large_class_outline_moves_to_the_photos_edge_and_parts_stay():
    photo, logits = _two_tone()
    refined = refine_logits(logits, photo, PhotoRefinement(classes=(SKIN, HAIR)))
    before, after = logits.argmax(1)[0], refined.argmax(1)[0]
    assert (before[:, 8:10] == HAIR).all()  # the regressor's hair spills two columns onto the bright side
    assert (after[:, :8] == HAIR).all() and (after[:, 8:][after[:, 8:] != BROW] == SKIN).all()
    assert after[4, 12] == BROW and torch.equal(refined[0, :, 4, 12], logits[0, :, 4, 12])  # the part is kept as drawn
    unrefined = refine_logits(logits, torch.zeros_like(photo), PhotoRefinement(classes=(SKIN, HAIR)))
    assert (unrefined.argmax(1)[0][:, 8:10] == HAIR).all()  # a flat photo gives no edge to snap to


def test_each_sample_is_refined_on_its_own():
    torch.manual_seed(0)
    photo, logits = torch.rand(3, 3, 12, 12) * 2 - 1, torch.randn(3, 4, 12, 12) * 2
    ref = PhotoRefinement(classes=(0, 1, 3), radius=2)
    together = refine_logits(logits, photo, ref)
    alone = torch.cat([refine_logits(logits[i:i + 1], photo[i:i + 1], ref) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_fit_records_the_refinement_and_the_anchor_applies_it(tmp_path, gen):
    data = write_masks(tmp_path / "d")
    opts = dict(batch_size=4, lr=1e-3, progress=False, preview_every=0, regressor_batch_norm=False,
                calibration_latents=0, steps=3)
    out = fit("seg", data, gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r", photo_refine=True, **opts)
    anchor = load_anchor(out, generator=gen).eval()
    ref = anchor.photo_refinement
    assert ref is not None and "photo_refinement" in anchor.metadata
    with torch.no_grad():
        syn = gen.synthesize(gen.sample_latents(list(range(4)), seed=0))
        plain = anchor.regressor(anchor.tap_features(syn))
        assert torch.equal(anchor.regress(syn), refine_logits(plain, syn.photo(anchor.size), ref))
    save_anchor(anchor, tmp_path / "copy.safetensors")
    assert load_anchor(tmp_path / "copy.safetensors").photo_refinement == ref  # survives a round trip
    for bad in ({**ref.to_dict(), "classes": [0, 19]}, {"classes": [0, 1], "kernel": "huge"}):
        anchor.metadata["photo_refinement"] = bad
        save_anchor(anchor, tmp_path / "bad.safetensors")
        with pytest.raises(AnchorFileError, match="photo_refinement"):  # refused at load, not mid-run
            load_anchor(tmp_path / "bad.safetensors")
    without = load_anchor(fit("seg", data, gen, tmp_path / "b.safetensors", run_dir=tmp_path / "r2", **opts))
    assert without.photo_refinement is None


def test_photo_refinement_only_for_masks(tmp_path, gen):
    with pytest.raises(FitError, match="photo-refine"):
        fit("sketch", write_images(tmp_path / "d"), gen, tmp_path / "a.safetensors", run_dir=tmp_path / "r",
            steps=1, photo_refine=True, progress=False)
