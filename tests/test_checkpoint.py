"""Checkpoints: the sizes a file declares are checked before torch reads it."""
from __future__ import annotations

import zipfile

import pytest
import torch

from ampsim.checkpoint import load_checkpoint
from ampsim.engine.errors import CheckpointError, SizeLimitError
from ampsim.fileio import save_torch


def test_declared_sizes_over_the_limit_are_refused_before_reading(tmp_path):
    path = tmp_path / "c.pt"
    save_torch({"format": "x", "w": torch.zeros(1000)}, path)
    assert load_checkpoint(path)["w"].shape == (1000,)
    with pytest.raises(SizeLimitError, match=r"c\.pt: the checkpoint would need about 4\.\d KB.*raise it with max_bytes="):
        load_checkpoint(path, max_bytes=1000)


def test_a_declared_size_the_file_cannot_hold_is_corrupt(tmp_path):
    path = tmp_path / "c.pt"
    save_torch({"w": torch.zeros(10)}, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    # the central directory's uncompressed size of that entry: 4 bytes at offset 24 of its record
    name = info.filename.encode()
    start = 0
    while True:
        at = data.find(b"PK\x01\x02", start)
        if data[at + 46: at + 46 + len(name)] == name:
            break
        start = at + 4
    data[at + 24: at + 28] = (2**31).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"declares 2\.1 GB in a file of .*corrupt"):
        load_checkpoint(path)
