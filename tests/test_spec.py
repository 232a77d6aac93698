import json

import pytest

from synthgen import celebamask, landmarks68
from synthgen.anchors.spec import DomainSpec, DomainSpecError, builtin_domain_names, builtin_domains_dir, load_domain_spec


def test_builtin_domains_are_found_and_valid():
    assert builtin_domains_dir().name in ("domains", "_domains")
    assert {"rgb", "seg", "sketch", "landmark"} <= set(builtin_domain_names())
    rgb, sketch = load_domain_spec("rgb"), load_domain_spec("sketch")
    assert (rgb.kind, rgb.channels, rgb.from_generator) == ("image", 3, True)
    assert (sketch.in_channels, sketch.out_channels, sketch.from_generator) == (1, 1, False)


def test_seg_is_the_celebamask_label_set():
    seg = load_domain_spec("seg")
    assert list(seg.class_names) == celebamask.CLASS_NAMES
    assert [tuple(c) for c in seg.palette] == [tuple(c) for c in celebamask.PALETTE]
    assert seg.in_channels == seg.out_channels == 19


def test_landmark_uses_the_dlib_skeleton():
    lm = load_domain_spec("landmark")
    assert lm.num_points == landmarks68.NUM_POINTS == lm.in_channels
    assert [tuple(p) for p in lm.skeleton] == [tuple(p) for p in landmarks68.LANDMARKS68_SKELETON]


def test_user_spec_file_with_merged_classes(tmp_path):
    path = tmp_path / "face7.json"
    names = ["background", "skin", "brows", "eyes", "nose", "mouth", "hair"]
    path.write_text(json.dumps({"name": "face7", "kind": "mask", "class_names": names,
                                "palette": [[i * 30, 0, 0] for i in range(7)]}))
    spec = load_domain_spec(path)
    assert spec.num_classes == 7 and spec.out_channels == 7
    assert DomainSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("change, words", [
    ({"kind": "video"}, "kind"),
    ({"palette": [[0, 0, 0]]}, "palette has 1 colours"),
    ({"name": "a b"}, "name"),
    ({"colour": 1}, "unknown field"),
])
def test_invalid_specs_name_the_problem(tmp_path, change, words):
    d = {"name": "m", "kind": "mask", "class_names": ["a", "b"], "palette": [[0, 0, 0], [1, 1, 1]], **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(DomainSpecError, match=words) as info:
        load_domain_spec(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_keypoint_skeleton_indices_are_checked():
    with pytest.raises(DomainSpecError, match="skeleton"):
        DomainSpec.from_dict({"name": "k", "kind": "keypoints", "num_points": 3, "skeleton": [[0, 3]],
                              "heatmap_sigma": 0.02})


def test_unknown_domain_lists_builtins():
    with pytest.raises(DomainSpecError, match="built-ins are .*seg"):
        load_domain_spec("hair")
