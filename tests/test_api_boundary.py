"""Every case of ``tests/api_cases.py`` (bad and borderline values at the library boundary) ends as expected:
an accepted value gives the result of its plain-Python equal, a refused one a ValueError/TypeError naming it.

The table of outcomes (before and after) is in docs/reliability.md: ``python tests/api_cases.py``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _cases_module():
    name = "ampsim_api_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("api_cases.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


CASES = _cases_module()
ALL = CASES.cases()


def test_case_names_are_distinct():
    names = [c.name for c in ALL]
    assert len(names) == len(set(names)) == 288


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_case(case, one_thread):
    what, detail = CASES.outcome(case)
    assert what == ("ok" if case.expect == "ok" else "clear"), detail
