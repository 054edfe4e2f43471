"""The one atomic writer: it respects what the path names (links, FIFOs, folders, devices, long names)."""
from __future__ import annotations

import os
import stat

import pytest

from ampsim.engine.errors import AmpsimError, OutputPathError
from ampsim.fileio import AtomicFile, atomic_write, output_stem, target_path, write_json, write_text


def _names(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_link_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "data" / "out.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_json(link, {"a": 1})
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == '{\n "a": 1\n}\n'
    assert _names(tmp_path) == ["data", "link.json"] and _names(real.parent) == ["out.json"]


def test_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "new.txt")
    write_text(link, "hello")
    assert link.is_symlink() and (tmp_path / "new.txt").read_text() == "hello"


def test_a_link_loop_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(OutputPathError, match="a loop"):
        write_text(a, "x")
    assert a.is_symlink() and b.is_symlink() and _names(tmp_path) == ["a", "b"]


@pytest.mark.parametrize("make, what", [
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: os.mkdir(p), "a folder"),
])
def test_a_path_that_is_not_a_regular_file_is_never_replaced(tmp_path, make, what):
    path = tmp_path / "x.jsonl"
    make(path)
    mode = os.stat(path).st_mode
    with pytest.raises(OutputPathError, match=what) as err:
        write_text(path, "x")
    assert isinstance(err.value, (AmpsimError, ValueError, OSError))
    assert os.stat(path).st_mode == mode and _names(tmp_path) == ["x.jsonl"]


def test_a_link_to_a_fifo_is_refused_naming_both(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out.txt"
    link.symlink_to(fifo)
    with pytest.raises(OutputPathError, match=r"out\.txt \(a link to .*pipe\): is a FIFO"):
        write_text(link, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_device_is_refused():
    with pytest.raises(OutputPathError, match="character device"):
        target_path(os.devnull)


@pytest.mark.parametrize("name", ["a" * 255, "é" * 127 + "a", "x" * 250 + ".json"])
def test_a_final_name_of_255_bytes_works_and_the_temporary_stays_beside_it(tmp_path, name):
    path = tmp_path / name
    with AtomicFile(path) as f:
        tmp = f._tmp
        assert os.path.dirname(tmp) == str(tmp_path) and len(os.fsencode(os.path.basename(tmp))) <= 255
        assert ".partial-" in tmp
        f.write("done")
    assert path.read_text() == "done" and _names(tmp_path) == [name]


def test_an_existing_file_keeps_its_permission_bits(tmp_path):
    path = tmp_path / "table.md"
    path.write_text("old")
    os.chmod(path, 0o640)
    write_text(path, "new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and path.read_text() == "new"


def test_missing_folder_and_file_as_folder(tmp_path):
    with pytest.raises(OutputPathError, match="folder .*nope not found"):
        write_text(tmp_path / "nope" / "x.txt", "x")
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        write_text(tmp_path / "f" / "x.txt", "x")
    with pytest.raises(OutputPathError, match="empty file name"):
        write_text("", "x")
    with pytest.raises(OutputPathError, match="folder name"):
        write_text(str(tmp_path) + os.sep, "x")
    assert _names(tmp_path) == ["f"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_file_and_folder_are_refused(tmp_path):
    path = tmp_path / "ro.txt"
    path.write_text("keep")
    os.chmod(path, 0o444)
    with pytest.raises(OutputPathError, match="read-only"):
        write_text(path, "x")
    assert path.read_text() == "keep"
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            write_text(folder / "x.txt", "x")
    finally:
        os.chmod(folder, 0o755)


def test_an_error_inside_the_block_leaves_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old" and _names(tmp_path) == ["r.json"]


def test_an_output_stem_names_files_beside_it_never_inside_a_device_or_folder(tmp_path):
    """``--out STEM`` writes STEM.json and STEM.md: a stem given with one of its suffixes names the same files; a
    stem that is a folder, a device or a FIFO, or no name at all, is refused naming the flag; nothing is made."""
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("")
    both = (".json", ".md")
    for given in ("out", "out.json", "out.md"):
        assert output_stem(str(tmp_path / given), both) == str(tmp_path / "out")
    assert output_stem(str(tmp_path / "out.txt"), both) == str(tmp_path / "out.txt")
    assert output_stem(str(tmp_path / "new" / "deeper" / "out"), both) == str(tmp_path / "new" / "deeper" / "out")
    with pytest.raises(OutputPathError, match=r"^--out /dev/null: is a character device; --out STEM writes STEM.json "
                                              r"and STEM.md \(/dev/null.json and /dev/null.md\), not into it"):
        output_stem("/dev/null", both)
    for bad, words in (("dir", "is a folder"), ("fifo", "is a FIFO"), ("dir/", "not a file stem"),
                       ("file/out", "is not a folder"), ("", "not a file stem")):
        with pytest.raises(OutputPathError, match=f"--flag .*{words}"):
            output_stem(os.path.join(str(tmp_path), bad) if bad else "", (".md",), flag="--flag")
    (tmp_path / "dir" / "x.md").mkdir()
    with pytest.raises(OutputPathError, match="x.md: is a folder; give a file name"):
        output_stem(str(tmp_path / "dir" / "x"), both)
    assert _names(tmp_path) == ["dir", "fifo", "file"] and _names(tmp_path / "dir") == ["x.md"]
