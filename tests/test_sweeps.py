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
        assert main(["verify", "ids", "--graph", "star:3", "--seeds", "5", "--dask", address, "--workers", "5"]) == 0
    out = capsys.readouterr().out
    assert "star:3 (n=4): unique 5/5" in out
    # the scheduler's real workers (two, one thread each), not --workers
    assert out.splitlines()[0] == f"Dask scheduler {address}: 2 workers, 2 threads"


@pytest.mark.slow
def test_cli_synchronizer_reports_the_schedulers_workers(capsys, tmp_path, dask_cluster):
    import json

    from ampsim.cli import main

    address = dask_cluster._client.scheduler.address
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["verify", "synchronizer", "--graph", "path:3", "--layers", "1", "--seeds", "2", "--no-relu",
                     "--delay", "uniform", "--dask", address, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Dask scheduler {address}: 2 workers, 2 threads"
    assert out[1].endswith("(2 Dask workers)")
    summary = json.loads(next(tmp_path.glob("*_summary.json")).read_text())
    assert summary["workers"] == 2


@pytest.mark.slow
def test_local_cluster_serves_no_dashboard_and_listens_on_loopback_only(dask_cluster):
    import urllib.error
    import urllib.request

    psutil = pytest.importorskip("psutil")
    client = dask_cluster._client
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert getattr(dask_cluster, "dashboard_link", None) is None
    port = client.scheduler_info()["services"]["dashboard"]  # Dask's HTTP listener: always there, serves nothing
    for path in ("/status", "/health", "/"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
        code = err.value.code
        err.value.close()  # the error holds the response's socket
        assert code == 404
    listening = [c.laddr for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and all(a.ip == "127.0.0.1" for a in listening) and 8787 not in [a.port for a in listening]


def test_dashboard_is_asked_for_only_with_a_local_cluster(capsys):
    pytest.importorskip("dask.distributed")
    from ampsim.cli import main
    from ampsim.sweeps import dask_executor

    with pytest.raises(ValueError, match="only with --dask local; the scheduler at tcp://127.0.0.1:1 serves its own"):
        with dask_executor("tcp://127.0.0.1:1", dashboard="127.0.0.1:0"):
            pass  # refused before connecting
    assert main(["verify", "ids", "--graph", "star:3", "--seeds", "2", "--dask-dashboard", "127.0.0.1:0"]) == 2
    assert "--dask-dashboard: only with --dask local" in capsys.readouterr().err
    try:
        import bokeh  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError, match="--dask-dashboard needs bokeh"):
            with dask_executor("local", workers=1, dashboard="127.0.0.1:0"):
                pass  # refused before a cluster starts


@pytest.mark.parametrize("command", [["verify", "ids"], ["verify", "synchronizer"], ["verify", "separation"],
                                     ["plot"]])
def test_help_names_only_options_that_exist(capsys, command):
    import re

    from ampsim.cli import build_parser, main

    with pytest.raises(SystemExit):
        main(command + ["--help"])
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", capsys.readouterr().out))

    parser = build_parser(command)
    for word in command:  # down to the parser of the command's action (verify -> verify ids)
        parser = next(a for a in parser._actions if a.nargs == "A...").choices[word]
    flags = {f for action in parser._actions for f in action.option_strings}
    assert named and named <= flags, named - flags


def test_a_sweep_says_what_it_will_do_or_refuses_by_its_size():
    import io

    from ampsim.engine.errors import SizeLimitError
    from ampsim.sweeps import announce_cases

    out = io.StringIO()
    announce_cases(12_000, "20 graphs x 4 L x 3 delay settings x 50 seeds", 2, (0.05, 0.5), log=out)
    assert out.getvalue() == ("12,000 cases (20 graphs x 4 L x 3 delay settings x 50 seeds), about 5 min to 50 min "
                              "over 2 workers\n")
    with pytest.raises(SizeLimitError, match=r"makes 200,000 cases \(about 2.8 h to 28 min.*|makes 200,000 cases"):
        announce_cases(200_000, "x", 1, (0.05, 0.5), log=out)
    announce_cases(200_000, "x", 1, (0.05, 0.5), limit=None, log=out)  # --max-cases 0: no limit


def test_verify_synchronizer_refuses_a_huge_sweep_before_building_it():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ampsim", "verify", "synchronizer", "--seeds", "100000000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("ampsim: error: 20 graphs x 4 L x 3 delay settings x 100000000 seeds makes "
                               "24,000,000,000 cases (about 333,333 h to 3,333,333 h over 1 worker); the limit is "
                               "100,000 cases: lift it with --max-cases 24000000000 (0: no limit)")
