"""Loading checkpoints: ``torch.load(weights_only=True)`` with one error class naming the file.

Rule: a checkpoint is a ``dict`` saved with :func:`ampsim.fileio.save_torch`. Whatever
is wrong with the file -- missing, a directory, empty, truncated, flipped bytes, a
pickle of something else, a foreign object that ``weights_only`` refuses -- the
caller gets :class:`~ampsim.engine.errors.CheckpointError` whose message names the
file and says what was found, never torch's traceback (which advises
``weights_only=False``, unsafe for a file one did not write).

    ckpt = load_checkpoint("runs/x/checkpoint.pt", format="ampsim.train", required=("model", "epoch"))
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Iterable, Optional, Union

from . import validate as V
from .engine.errors import CheckpointError

__all__ = ["CheckpointError", "load_checkpoint"]


KINDS = {"ampsim.train.checkpoint": "training checkpoint"}
"""How messages name a checkpoint of a given ``format`` (default: "checkpoint")."""


def load_checkpoint(
    path: Union[str, "os.PathLike[str]"],
    required: Optional[Iterable[str]] = None,
    map_location: Any = "cpu",
    format: Optional[str] = None,
    max_bytes: Optional[int] = None,
) -> dict:
    """The ``dict`` stored in ``path`` (tensors on ``map_location``); :class:`CheckpointError` otherwise.

    ``required``: keys the dict must hold; ``format``: the value its ``"format"`` key must have
    (a checkpoint of another kind is refused by name). ``max_bytes`` (default
    :data:`ampsim.validate.MAX_BYTES`, 2 GB): the sizes its zip directory declares are checked
    before torch reads a byte (:class:`SizeLimitError` over it; a declared size the file cannot
    hold is a corrupt file).
    """
    what = KINDS.get(format or "", "checkpoint")
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"a {what} path must be a str or os.PathLike, got {path!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: {what} not found")
    if V.not_a_file(path):
        raise CheckpointError(f"{path}: is {V.not_a_file(path)}, not a {what} file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if not magic:
        raise CheckpointError(f"{path}: not a readable {what} (the file is empty)")
    if magic.startswith(b"PK"):
        _check_declared_sizes(path, what, V.MAX_BYTES if max_bytes is None else max_bytes)
    import torch

    try:
        with warnings.catch_warnings():  # torch's notes (pickle protocol, ...) would break the one-line error
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # zip, pickle, unpickler, decoding errors, absurd sizes: "unreadable"
        raise CheckpointError(f"{path}: not a readable {what} ({_reason(exc, magic)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not an ampsim {what} (it holds a {type(obj).__name__}, not a dict)")
    if format is not None and obj.get("format") != format:
        found = obj.get("format")
        why = "another program's file" if found is None else f"its format is {str(found)[:60]!r}"
        raise CheckpointError(f"{path}: not an ampsim {what} ({why})")
    if required is not None:
        missing = [k for k in required if k not in obj]
        if missing:
            raise CheckpointError(f"{path}: not an ampsim {what} (it lacks {missing})")
    return obj


def _reason(exc: BaseException, magic: bytes) -> str:
    """Why torch could not read the file, in a few words and without torch's advice to load unsafely."""
    text = " ".join(str(exc).split())
    refused = "Weights only load failed" in text or "Unsupported global" in text or "weights_only" in text
    if magic.startswith(b"PK"):  # torch's zip format
        if "Unsupported global" in text:
            return "it holds objects other than tensors and plain data; ampsim never loads those"
        return "truncated or corrupt"
    if magic.startswith(b"\x80"):  # a bare pickle
        if refused:
            return "it holds objects other than tensors and plain data; ampsim never loads those"
        return "truncated or corrupt"
    return f"not a torch file: {type(exc).__name__}"


def _check_declared_sizes(path: str, what: str, limit: int) -> None:
    """The entries a torch zip declares, before anything is read: their total against ``limit``; stored
    (uncompressed, as torch writes them) entries larger than the file itself mean a corrupt directory."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # torch says what is wrong with it
    size = os.path.getsize(path)
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED and info.file_size > size:
            raise CheckpointError(f"{path}: not a readable {what} (entry {info.filename!r} declares "
                                  f"{V.fmt_bytes(info.file_size)} in a file of {V.fmt_bytes(size)}: corrupt)")
    V.within_memory(f"{path}: the {what}", sum(i.file_size for i in infos), limit, "max_bytes=")

