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

from .engine.errors import CheckpointError

__all__ = ["CheckpointError", "load_checkpoint"]


def load_checkpoint(
    path: Union[str, "os.PathLike[str]"],
    required: Optional[Iterable[str]] = None,
    map_location: Any = "cpu",
    format: Optional[str] = None,
    what: str = "checkpoint",
) -> dict:
    """The ``dict`` stored in ``path`` (tensors on ``map_location``); :class:`CheckpointError` otherwise.

    ``required``: keys the dict must hold; ``format``: the value its ``"format"`` key must have
    (a checkpoint of another kind is refused by name); ``what``: how messages call the file
    ("training checkpoint").
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: {what} not found")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, not a {what} file")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if size == 0:
        raise CheckpointError(f"{path}: not a readable {what} (the file is empty)")
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not the user's business
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # zip, pickle, unpickler and decoding errors all mean "corrupt"
        raise CheckpointError(f"{path}: not a readable {what} ({_reason(exc)})") from None
    an = "an" if what[:1].lower() in "aeiou" else "a"
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not an ampsim {what} (it holds a {type(obj).__name__}, not a dict)")
    if format is not None and obj.get("format") != format:
        found = obj.get("format")
        raise CheckpointError(f"{path}: not an ampsim {what} (another program's file)" if found is None else
                              f"{path}: not {an} {what} of this kind (its format is {found!r}, expected {format!r})")
    if required is not None:
        missing = [k for k in required if k not in obj]
        if missing:
            raise CheckpointError(f"{path}: incomplete ampsim {what} (it lacks {missing})")
    return obj


def _reason(exc: BaseException) -> str:
    """Why torch could not read the file, in the user's words (never torch's advice to load unsafely)."""
    text = str(exc)
    if "eights only" in text or "weights_only" in text or isinstance(exc, Warning):
        return "it holds objects other than tensors and plain values: another program's file"
    if "zip archive" in text or "central directory" in text or isinstance(exc, EOFError):
        return "truncated or corrupt"
    return "not a torch file: truncated, corrupt or another program's file"
