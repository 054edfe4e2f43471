"""``ampsim runs pack | unpack``: a folder of run files as one ``.jsonl.gz`` pack, and back (:mod:`ampsim.runpack`).

    ampsim runs pack runs/table4_runs results/table4_runs.jsonl.gz
    ampsim runs unpack results/table4_runs.jsonl.gz runs/table4_unpacked
"""
from __future__ import annotations

import argparse
from typing import Sequence

__all__ = ["configure"]


def _pack(args: argparse.Namespace) -> int:
    from ..runpack import pack

    print(f"wrote {args.out} ({pack(args.root, args.out, args.select)} files)")
    return 0


def _unpack(args: argparse.Namespace) -> int:
    from ..runpack import unpack

    print(f"wrote {unpack(args.packs, args.to)} files under {args.to}")
    return 0


def configure(name: str, parser: argparse.ArgumentParser, words: Sequence[str] = ()) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("pack", help="a folder of runs -> one .jsonl.gz")
    p.add_argument("root", help="the folder of run files")
    p.add_argument("out", help="the pack to write (its name ends in .jsonl.gz)")
    p.add_argument("--select", nargs="+", default=None, help="globs of relative paths to keep (default: all)")
    p.set_defaults(func=_pack)
    p = sub.add_parser("unpack", help="packs -> a folder")
    p.add_argument("packs", nargs="+")
    p.add_argument("to")
    p.set_defaults(func=_unpack)
