"""A restricted unpickler for NVIDIA's persistence pickles: weights out, no code in.

NVIDIA's loader exec()s the `module_src` stored in every network of a `.pkl`. Here the file is
first scanned opcode by opcode and refused if it names any global outside ALLOWED (so nothing at
all runs for a malicious file), then unpickled with the same allow-list, where each persistent
object becomes a plain dict of its class name and state and storages load with weights_only.
"""
from __future__ import annotations

import codecs
import collections
import io
import pickle
import pickletools
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from synthgen.generators.errors import CheckpointError


def _persistent_obj(meta: dict) -> dict:
    # The class's source stays text: only its name and __dict__ are kept.
    return {"__persistent__": True, "class_name": meta.get("class_name"), "version": meta.get("version"),
            "state": meta.get("state")}


def _storage_from_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *state: Any) -> torch.Tensor:
    return data


def _numpy_scalar_reconstructor() -> Callable:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    return scalar


ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: _persistent_obj,
    ("torch.storage", "_load_from_bytes"): lambda: _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): lambda: _parameter,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): lambda: dict,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar_reconstructor,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar_reconstructor,
    ("builtins", "set"): lambda: set,
    ("__builtin__", "set"): lambda: set,
    ("_codecs", "encode"): lambda: codecs.encode,
}

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_UNKNOWN = object()


def scan_globals(data: bytes, path: Path) -> set[tuple[str, str]]:
    """Every (module, name) the pickle would import, found without unpickling anything.

    STACK_GLOBAL takes its names from the stack, so string pushes and the memo are tracked; a
    global whose name cannot be resolved statically is refused.
    """
    found: set[tuple[str, str]] = set()
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # values pushed, newest last (_UNKNOWN for anything but strings)
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found.add((module, attr))
                recent.append(_UNKNOWN)
            elif name == "STACK_GLOBAL":
                if len(recent) < 2 or not all(isinstance(v, str) for v in recent[-2:]):
                    raise CheckpointError(path, "pickle imports a global whose name is computed at load time; refused")
                found.add((recent[-2], recent[-1]))
                recent.append(_UNKNOWN)
            elif name in ("EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"):
                raise CheckpointError(path, f"pickle uses opcode {name}, which this reader refuses")
            elif name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else arg.decode("latin-1") if isinstance(arg, bytes) else _UNKNOWN)
            elif name in _GET_OPS:
                recent.append(memo.get(arg, _UNKNOWN))
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else _UNKNOWN
            elif name in _PUT_OPS:
                memo[arg] = recent[-1] if recent else _UNKNOWN
            elif name == "STOP":
                break
            else:
                recent.append(_UNKNOWN)
            del recent[:-4]
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(path, f"not a readable pickle, truncated or corrupt ({type(exc).__name__}: {exc})") from None
    return found


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise CheckpointError(self.path, f"pickle needs global {module}.{name}, which is not allowed; refused")
        return ALLOWED[(module, name)]()


def safe_load_pickle(path: Path) -> Any:
    """Unpickle an NVIDIA-style `.pkl` under the allow-list; CheckpointError on anything else."""
    data = Path(path).read_bytes()
    # NVIDIA's persistence pickles carry their network's source: StyleGAN3's synthesis starts
    # from Fourier features (SynthesisInput), which StyleGAN2 has not. Say so before the
    # allow-list refuses its globals with a message that names none of this.
    if b"class SynthesisInput" in data or b"networks_stylegan3" in data:
        raise CheckpointError(path, "a StyleGAN3 checkpoint: StyleGAN3 is not supported; pass a StyleGAN2 "
                                    "(rosinality .pt, NVIDIA stylegan2-ada .pkl) or BigGAN-deep checkpoint")
    refused = sorted(g for g in scan_globals(data, path) if g not in ALLOWED)
    if refused:
        module, name = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise CheckpointError(path, f"pickle needs global {module}.{name}{more}, which is not allowed; refused before loading")
    try:
        return RestrictedUnpickler(io.BytesIO(data), path).load()
    except CheckpointError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(path, f"unpickling failed, truncated or corrupt ({type(exc).__name__}: {first})") from None
