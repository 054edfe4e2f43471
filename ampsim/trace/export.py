"""``ampsim export``: one trace, other formats (ShiViz's upload file, JSONL, Parquet).

The formats are functions of the loaded :class:`~ampsim.trace.io.Trace` (STYLE.md
semantics 6): ``shiviz`` writes :func:`~ampsim.trace.causality.shiviz_file`,
``jsonl`` and ``parquet`` rewrite the records in the other trace format (both read
back as the same ``Trace``). Every file is written atomically.
"""
from __future__ import annotations

import os
from typing import Union

from .records import PARQUET_SUFFIXES, trace_format

__all__ = ["EXPORT_FORMATS", "export_trace"]

EXPORT_FORMATS = ("shiviz", "jsonl", "parquet")


def export_trace(trace, path: Union[str, os.PathLike], fmt: str) -> str:
    """Write ``trace`` (a Trace, a ListTracer or a trace file) to ``path`` as ``fmt``; returns a description."""
    from .causality import as_trace, vector_clocks, write_shiviz

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    _check_name(path, fmt)
    trace = as_trace(trace)
    if fmt == "shiviz":
        write_shiviz(trace, path)
        return f"ShiViz log ({len(vector_clocks(trace))} events; upload it as is)"
    if fmt == "jsonl":
        from .io import save_trace

        save_trace(trace, path)
        return f"JSONL trace ({len(trace.records)} records)"
    from .io import format_saver

    format_saver("parquet")(trace, path)  # registered by the package: ampsim.trace.columnar
    return f"Parquet trace ({len(trace.records)} records)"


def _check_name(path: Union[str, os.PathLike], fmt: str) -> None:
    """Refuse an output name that names another format than ``fmt`` (:func:`~ampsim.trace.records.trace_format`
    decides what a trace file's name means; a ShiViz log is neither JSONL nor Parquet by name)."""
    name = os.fspath(path)
    if fmt == "shiviz":
        if name.lower().endswith((".jsonl", ".json", ".ndjson") + PARQUET_SUFFIXES):
            raise ValueError(f"{name}: the name says a trace file; a ShiViz log is another format (e.g. .log or .txt)")
        return
    named = trace_format(name)
    if named != fmt:
        raise ValueError(f"{name}: the name says {named}, the format asked is {fmt}: name the file for its format "
                         f"({'.parquet' if fmt == 'parquet' else '.jsonl'})")
