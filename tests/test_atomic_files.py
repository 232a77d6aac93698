"""Files written whole: atomic_write leaves the old file or the new one, with plain permissions."""
import os
import stat

import pytest

from synthgen.atomic_files import atomic_write


def test_atomic_write_replaces_whole_files_with_umask_permissions(tmp_path):
    target = tmp_path / "anchor.safetensors"
    target.write_bytes(b"old")
    with atomic_write(target) as tmp:
        assert tmp.name.endswith(".tmp") and tmp.parent == tmp_path
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # as a writer that keeps files private would
        os.write(fd, b"new")
        os.close(fd)
        assert target.read_bytes() == b"old"  # nothing is visible before the block ends
    assert target.read_bytes() == b"new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["anchor.safetensors"]


def test_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "card.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]
