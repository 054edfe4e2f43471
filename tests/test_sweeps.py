"""Sweeps on any concurrent.futures.Executor and on Dask (ampsim.sweeps): results identical to one worker."""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from ampsim.protocols.verify_ids import verify_ids
from ampsim.protocols.verify_synchronizer import make_cases, sweep
from ampsim.sweeps import run_map, starred


def _square(x: int) -> int:
    return x * x


def test_run_map_keeps_item_order_on_any_executor():
    items = list(range(37))
    expected = [x * x for x in items]
    assert run_map(_square, items) == expected
    with ThreadPoolExecutor(max_workers=3) as ex:
        assert run_map(_square, items, executor=ex) == expected
        assert run_map(_square, items, executor=ex, chunksize=5) == expected
        assert run_map(_square, [], executor=ex) == []
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_map(_square, items, workers=0)
    with pytest.raises(ValueError, match="at most 64 processes"):
        run_map(_square, items, workers=100_000)  # refused before any process is forked


def test_verify_sweeps_on_a_thread_pool_equal_one_worker():
    ids_one = verify_ids(["star:3", "cycle:5"], 4)
    cases = make_cases(graphs=["path:3"], layers=[1, 2], seeds=2)
    sync_one = sweep(cases)
    with ThreadPoolExecutor(max_workers=2) as ex:
        assert verify_ids(["star:3", "cycle:5"], 4, executor=ex) == ids_one
        assert sweep(cases, executor=ex) == sync_one
    assert [r.seed for r in ids_one] == [0, 1, 2, 3, 0, 1, 2, 3]


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed")
    from ampsim.sweeps import dask_executor

    with warnings.catch_warnings():  # Dask's own start-up and shutdown warnings are not ours to fix
        warnings.simplefilter("ignore")
        with dask_executor("local", workers=2) as executor:
            assert isinstance(executor._client, distributed.Client)
            assert len(executor._client.nthreads()) == 2
            yield executor


@pytest.mark.slow
def test_dask_local_cluster_of_two_workers_gives_identical_results(dask_cluster):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = verify_ids(["star:4", "petersen"], 6, start="vary", executor=dask_cluster)
        cases = make_cases(graphs=["path:3", "cycle:4"], layers=[1, 2], seeds=2)
        sync = sweep(cases, executor=dask_cluster)
    assert ids == verify_ids(["star:4", "petersen"], 6, start="vary")
    assert sync == sweep(cases)
    assert len(sync) == 2 * 2 * 2 * 3 and all(r.outcome == "pass" for r in sync)


def _without_seconds(report) -> dict:
    from dataclasses import asdict

    d = asdict(report)
    d.pop("seconds")  # wall-clock time of the pair: the only field that may differ
    return d


@pytest.mark.slow
def test_separation_pairs_on_dask_equal_one_worker(dask_cluster):
    from ampsim.theory.separation import verify_pair

    tasks = [("rook:4", "shrikhande", 2, 2, None), ("cycle:6", "petersen", 2, 2, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spread = run_map(starred(verify_pair), tasks, executor=dask_cluster)
    alone = [verify_pair(*t) for t in tasks]
    assert [_without_seconds(r) for r in spread] == [_without_seconds(r) for r in alone]
    assert all(r.separated for r in spread)


@pytest.mark.slow
def test_cli_dask_address(capsys, dask_cluster):
    from ampsim.cli import main

    address = dask_cluster._client.scheduler.address  # a running scheduler, as --dask tcp://host:port
    assert address.startswith("tcp://127.0.0.1:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["verify", "ids", "--graph", "star:3", "--seeds", "5", "--dask", address]) == 0
    assert "star:3 (n=4): unique 5/5" in capsys.readouterr().out
