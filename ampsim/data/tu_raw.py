"""TU Dortmund's own text format (PTC_MR): :func:`ampsim.data.tu.load_tu_raw` and
:func:`ampsim.data.tu.read_tu_folder`, importable from here too (``load_tu("PTC_MR")`` reads it)."""
from .tu import RAW_DATASETS, load_tu_raw, read_tu_folder

__all__ = ["RAW_DATASETS", "load_tu_raw", "read_tu_folder"]
