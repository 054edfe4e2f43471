"""The command line's plans, limits and output checks: exact lines for the cases the probe found."""
from __future__ import annotations

import pytest

from ampsim.cli import main
from ampsim.sweeps import announce_cases, check_folder


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # a usage error found by the parser
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def test_announce_states_zero_work_and_refuses_above_the_limit(capsys):
    announce_cases(0, "0 seeds", 1, (0.1, 1.0), unit="runs")
    assert capsys.readouterr().err == "0 runs (0 seeds): nothing to do\n"
    announce_cases(3, "3 seeds", 8, (1.0, 10.0))
    assert capsys.readouterr().err == "3 cases (3 seeds), about 1 s to 10 s over 8 workers\n"
    with pytest.raises(ValueError, match=r"^x makes 11 cases \(about 11 s to 2 min over 1 worker\); the limit is 10 "
                                         r"cases: lift it with --max-cases 11 \(0: no limit\)$"):
        announce_cases(11, "x", 1, (1.0, 10.0), limit=10)
    with pytest.raises(ValueError, match="at most 64 processes"):
        announce_cases(1, "x", 65, (1.0, 1.0))


def test_check_folder_refuses_what_is_not_a_folder_and_makes_nothing(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(FileExistsError):
        check_folder(str(tmp_path / "f"))
    with pytest.raises(NotADirectoryError):
        check_folder(str(tmp_path / "f" / "sub"))
    check_folder(str(tmp_path / "new" / "deeper"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_sweep_refused_above_max_cases_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["ids", "stars", "--ks", "2", "--seeds", "100000000"], capsys)
    assert code == 2 and err == ["ampsim: error: 1 star sizes x 100000000 seeds; sizes already measured under runs/ids "
                                 "are read back makes 100,000,000 cases (about 139 h to 13,889 h over 1 worker); the "
                                 "limit is 100,000 cases: lift it with --max-cases 100000000 (0: no limit)"]
    assert list(tmp_path.iterdir()) == []


def test_output_folder_that_is_a_device_is_named_before_the_plan(capsys):
    code, _, err = _run(["verify", "synchronizer", "--graph", "cycle:4", "--seeds", "1", "--layers", "1",
                         "--out", "/dev/null"], capsys)
    assert code == 2 and err == ["ampsim: error: /dev/null: is a character device, not a folder"]


def test_verify_synchronizer_arguments_are_refused_before_the_plan(capsys):
    code, _, err = _run(["verify", "synchronizer", "--dim", "100000000"], capsys)
    assert code == 2 and err == ["ampsim verify synchronizer: error: argument --dim: expected a whole number in "
                                 "1..4,096, got '100000000' (see ampsim verify synchronizer --help)"]
    code, _, err = _run(["verify", "synchronizer", "--graph", "cycle:0"], capsys)
    assert code == 2 and err == ["ampsim: error: graph spec 'cycle:0': a cycle needs at least 3 nodes"]


@pytest.fixture
def trace(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    assert main(["run", "--graph", "cycle:5", "--trace", str(path)]) == 0
    capsys.readouterr()
    return path


def test_max_records_is_a_cli_flag_in_the_message(trace, capsys):
    code, _, err = _run(["replay", str(trace), "--max-records", "1"], capsys)
    assert code == 2 and err == [f"ampsim: error: {trace}: the trace holds up to 45 records and would need about "
                                 "18.0 KB of memory; the limit is 400 B: raise it with --max-records (now 1; 0: no "
                                 "limit) if you have the memory"]
    assert _run(["replay", str(trace), "--max-records", "0"], capsys)[0] == 0


def test_plot_refuses_a_huge_raster_before_drawing(trace, tmp_path, capsys):
    out = tmp_path / "x.png"
    code, _, err = _run(["plot", str(trace), "-o", str(out), "--dpi", "100000"], capsys)
    assert code == 2 and err == ["ampsim: error: --dpi 100000 makes a 1,100,000 x 310,000 pixel picture (341,000 "
                                 "megapixels, about 1.4 TB while drawn); the limit is 100 megapixels: lower --dpi, or "
                                 "lift it with --max-megapixels 341000 (0: no limit)"]
    assert not out.exists()


def test_a_run_of_another_configuration_is_never_overwritten(tmp_path, capsys):
    folder = tmp_path / "old"
    folder.mkdir()
    before = '{"config": {"task": "lcc", "model": "amp-rnn", "epochs": 5}, "finished": true}\n'
    (folder / "result.json").write_text(before)
    code, _, err = _run(["train", "--task", "limits1", "--epochs", "1", "--out", str(folder), "--quiet"], capsys)
    assert code == 2 and err == [f"ampsim: error: {folder}/result.json holds a run of another configuration (task "
                                 "'lcc' there, 'limits1' here, seed None there, 0 here, delay None there, 'constant' "
                                 "here, gate None there, False here, and 3 more); it is never overwritten: give "
                                 "another --out (or --root), or move it away"]
    assert (folder / "result.json").read_text() == before


def test_a_corrupt_result_file_is_named(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "result.json").write_text('{"x"')
    code, _, err = _run(["train", "--task", "limits1", "--epochs", "1", "--out", str(folder), "--resume"], capsys)
    assert code == 2 and err == [f"ampsim: error: {folder}/result.json: not a valid result file (Expecting ':' "
                                 "delimiter, line 1); it is kept: move it away to train this run again"]


@pytest.mark.parametrize("content, why", [(b"", "empty file, not a pack (a .jsonl.gz of ampsim runs pack)"),
                                          (b"hi\n", "not a pack (a .jsonl.gz of ampsim runs pack): Not a gzipped "
                                                    "file (b'hi')")])
def test_unpack_names_a_file_that_is_not_a_pack(tmp_path, capsys, content, why):
    pack = tmp_path / "p.jsonl.gz"
    pack.write_bytes(content)
    code, _, err = _run(["runs", "unpack", str(pack), str(tmp_path / "o")], capsys)
    assert code == 2 and err == [f"ampsim: error: {pack}: {why}"]
    assert not (tmp_path / "o").exists()


def test_table2_pack_names_a_missing_root(tmp_path, capsys):
    code, _, err = _run(["table2", "pack", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and err == [f"ampsim: error: --root {tmp_path / 'missing'}: not found"]


def test_table4_refuses_zero_epochs(capsys):
    code, _, err = _run(["table4", "run", "--epochs", "0"], capsys)
    assert code == 2 and err == ["ampsim table4 run: error: argument --epochs: expected a whole number >= 1, got '0' "
                                 "(see ampsim table4 run --help)"]


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    import ampsim.cli.simulate as S

    def boom(args):
        raise MemoryError

    monkeypatch.setattr(S, "_cmd_replay", boom)
    code, _, err = _run(["replay", "x.jsonl"], capsys)
    assert code == 2 and err == ["ampsim: error: out of memory (a size given is too large for this machine); lower it"]
