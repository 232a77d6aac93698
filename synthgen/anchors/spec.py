"""Domain specs: what a domain's files hold and how many channels its networks see.

A domain is one JSON file. Built-ins live in the repository's top-level `domains/`
folder; a user adds a domain by writing one more file (anywhere) and passing its path.

    {"name": "seg", "kind": "mask", "class_names": [...], "palette": [[r, g, b], ...]}
    {"name": "sketch", "kind": "image", "channels": 1}
    {"name": "landmark", "kind": "keypoints", "num_points": 68,
     "skeleton": [[0, 1, 2], ...], "heatmap_sigma": 0.02}
    {"name": "rgb", "kind": "image", "channels": 3, "from_generator": true}
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from synthgen.errors import UserError

KINDS = ("image", "mask", "keypoints")


class DomainSpecError(ValueError, UserError):
    """A domain spec file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class DomainSpec:
    name: str
    kind: str  # "image" | "mask" | "keypoints"
    channels: int = 0  # image: 1 (gray) or 3 (RGB)
    class_names: tuple[str, ...] = ()  # mask: class id i is class_names[i]
    palette: tuple[tuple[int, int, int], ...] = ()  # mask: colour of each class id in viewers
    num_points: int = 0  # keypoints: N points, one heatmap channel each
    skeleton: tuple[tuple[int, ...], ...] = ()  # keypoints: polylines of point indices, for drawing
    heatmap_sigma: float = 0.0  # keypoints: Gaussian sigma as a fraction of the image side
    from_generator: bool = False  # image: the generator's own photo (no regressor; only E learns)
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """Encoder input channels: pixels, one-hot classes, or one heatmap per point."""
        return {"image": self.channels, "mask": self.num_classes, "keypoints": self.num_points}[self.kind]

    @property
    def out_channels(self) -> int:
        """Regressor output channels: pixels, class logits, or one heatmap per point."""
        return self.in_channels

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["palette"] = [list(c) for c in self.palette]
        d["skeleton"] = [list(e) for e in self.skeleton]
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> "DomainSpec":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise DomainSpecError(f"{source}: unknown field(s) {sorted(unknown)}; "
                                  f"allowed: {sorted(cls.__dataclass_fields__)}")
        try:
            spec = cls(
                name=str(d["name"]),
                kind=str(d["kind"]),
                channels=int(d.get("channels", 0)),
                class_names=tuple(str(n) for n in d.get("class_names", ())),
                palette=tuple(tuple(int(v) for v in c) for c in d.get("palette", ())),
                num_points=int(d.get("num_points", 0)),
                skeleton=tuple(tuple(int(v) for v in e) for e in d.get("skeleton", ())),
                heatmap_sigma=float(d.get("heatmap_sigma", 0.0)),
                from_generator=bool(d.get("from_generator", False)),
                description=str(d.get("description", "")),
            )
        except KeyError as exc:
            raise DomainSpecError(f"{source}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise DomainSpecError(f"{source}: malformed field ({exc})") from None
        spec.validate(source)
        return spec

    def validate(self, source: str = "<spec>") -> None:
        def bad(msg: str) -> DomainSpecError:
            return DomainSpecError(f"{source}: {msg}")

        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise bad(f"name {self.name!r} must be letters, digits, '-' or '_' (it names files)")
        if self.kind not in KINDS:
            raise bad(f"kind {self.kind!r} must be one of {', '.join(KINDS)}")
        if self.kind == "image" and self.channels not in (1, 3):
            raise bad(f"an image domain needs channels 1 or 3, got {self.channels}")
        if self.from_generator and (self.kind != "image" or self.channels != 3):
            raise bad("from_generator is only for a 3-channel image domain (the generator's photo)")
        if self.kind == "mask":
            if not 2 <= self.num_classes <= 256:
                raise bad(f"a mask domain needs 2..256 class_names (ids are stored as uint8), got {self.num_classes}")
            if len(self.palette) != self.num_classes:
                raise bad(f"palette has {len(self.palette)} colours for {self.num_classes} classes")
            if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.palette):
                raise bad("palette entries must be [r, g, b] with values 0..255")
        if self.kind == "keypoints":
            if self.num_points < 1:
                raise bad("a keypoints domain needs num_points >= 1")
            if not 0 < self.heatmap_sigma < 0.5:
                raise bad(f"heatmap_sigma is a fraction of the image side in (0, 0.5), got {self.heatmap_sigma}")
            for line in self.skeleton:
                if len(line) < 2 or not all(0 <= i < self.num_points for i in line):
                    raise bad(f"skeleton polyline {list(line)} needs >= 2 point indices in 0..{self.num_points - 1}")


def builtin_domains_dir() -> Path:
    """The folder of built-in domain specs.

    A source checkout (editable install) has it at <repo>/domains; a wheel carries the
    same files as package data under synthgen/_domains (see docs/anchors.md).
    """
    package_root = Path(__file__).resolve().parent.parent  # .../synthgen
    for candidate in (package_root / "_domains", package_root.parent / "domains"):
        if (candidate / "rgb.json").is_file():
            return candidate
    raise DomainSpecError(
        f"built-in domain specs not found (looked in {package_root / '_domains'} and "
        f"{package_root.parent / 'domains'}); reinstall synthgen or pass a spec file path"
    )


def builtin_domain_names() -> list[str]:
    return sorted(p.stem for p in builtin_domains_dir().glob("*.json"))


def load_domain_spec(name_or_path: str | Path) -> DomainSpec:
    """A built-in domain by name (`seg`) or a user spec file by path (`my/hair7.json`)."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = builtin_domains_dir() / f"{name_or_path}.json"
        if not path.is_file():
            raise DomainSpecError(
                f"unknown domain {str(name_or_path)!r}: built-ins are {', '.join(builtin_domain_names())}; "
                "for your own domain pass the path of its .json spec file"
            )
    if not path.is_file():
        raise DomainSpecError(f"domain spec file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DomainSpecError(f"{path}: not a readable JSON domain spec ({exc})") from None
    if not isinstance(data, dict):
        raise DomainSpecError(f"{path}: a domain spec is a JSON object")
    return DomainSpec.from_dict(data, source=str(path))
