"""Fetching without a network: fixture parquet files stand in for the released ones."""

import dataclasses
import hashlib
import shutil

import pytest

from clipo.cli import main
from clipo.data import fetch as fetch_mod
from clipo.data.fetch import ChecksumError, fetch, track_files
from clipo.data.registry import RELEASED, get_dataset
from clipo.data.synthetic import generate_split
from clipo.errors import SchemaError

KEYS = ("gsm8k", "mmlu2k", "truthfulqa")  # a plain name, another folder-mate, a name with '*'


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def release(tmp_path, monkeypatch):
    """A fake release (layout data/test/...) whose files the registry entries are patched to match."""
    root = tmp_path / "release"
    patched = {}
    for n, key in enumerate(KEYS):
        entry = get_dataset(key)
        path = root / "data" / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_split("test", 4 + n, seed=n, seen=set()).to_parquet(path, index=False)
        patched[key] = dataclasses.replace(entry, sha256=sha256(path), rows=4 + n)
    monkeypatch.setattr(fetch_mod, "RELEASED", tuple(patched.get(d.key, d) for d in RELEASED))
    return root, patched


@pytest.fixture
def downloads(release, monkeypatch):
    """Replace pooch's HTTP downloader by one that serves the fake release by URL; records every call."""
    root, patched = release
    by_url = {entry.url: root / "data" / entry.path for entry in patched.values()}
    calls = []

    def downloader(url, output_file, pooch_instance):
        calls.append(url)
        shutil.copyfile(by_url[url], output_file)

    monkeypatch.setattr(fetch_mod, "_downloader", lambda progress: downloader)
    return calls


def test_track_files_lists_the_registry_and_rejects_unknown_keys():
    assert {d.key for d in track_files("I")} >= {"gsm8k_train", "gsm8k", "gsm_p1", "mmlu2k"}
    assert [d.key for d in track_files("II", ["amc", "aime"])] == ["amc", "aime"]
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) amc for track I"):
        track_files("I", ["amc"])
    with pytest.raises(ValueError, match="no released files for track 'mini'"):
        track_files("mini")
    assert get_dataset("truthfulqa").url.endswith("/data/test/truthfulqa%2A2.parquet")


def test_download_verifies_and_places_files(tmp_path, release, downloads):
    _, patched = release
    dest = tmp_path / "data"
    got = fetch("I", dest, only=list(KEYS), progress=False)
    assert [g.action for g in got] == ["downloaded"] * 3
    assert sorted(downloads) == sorted(e.url for e in patched.values())
    assert all_files(dest) == sorted(e.path for e in patched.values())  # no temp files left behind
    for g in got:
        assert sha256(g.path) == patched[g.key].sha256


def test_present_valid_file_means_no_network(tmp_path, release, downloads, monkeypatch):
    dest = tmp_path / "data"
    fetch("I", dest, only=["gsm8k"], progress=False)
    downloads.clear()
    got = fetch("I", dest, only=["gsm8k"], progress=False)
    assert [g.action for g in got] == ["present"]
    assert downloads == []


def test_checksum_mismatch_is_one_error_and_leaves_nothing(tmp_path, release, downloads, monkeypatch):
    _, patched = release
    wrong = "0" * 64
    monkeypatch.setattr(fetch_mod, "RELEASED", (dataclasses.replace(patched["gsm8k"], sha256=wrong),))
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError) as err:
        fetch("I", dest, only=["gsm8k"], progress=False)
    message = str(err.value)
    assert "test/gsm8k.parquet" in message and wrong in message and patched["gsm8k"].sha256 in message
    assert all_files(dest) == []


def test_corrupt_present_file_is_replaced_or_removed(tmp_path, release, downloads, monkeypatch):
    _, patched = release
    dest = tmp_path / "data"
    target = dest / patched["gsm8k"].path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    assert [g.action for g in fetch("I", dest, only=["gsm8k"], progress=False)] == ["downloaded"]
    assert sha256(target) == patched["gsm8k"].sha256

    target.write_bytes(b"truncated")
    monkeypatch.setattr(fetch_mod, "RELEASED", (dataclasses.replace(patched["gsm8k"], sha256="1" * 64),))
    with pytest.raises(ChecksumError):
        fetch("I", dest, only=["gsm8k"], progress=False)
    assert all_files(dest) == []  # the bad copy is not left in place


def test_row_count_and_schema_are_checked_after_the_checksum(tmp_path, release, downloads, monkeypatch):
    root, patched = release
    entry = patched["gsm8k"]
    dest = tmp_path / "data"
    monkeypatch.setattr(fetch_mod, "RELEASED", (dataclasses.replace(entry, rows=999),))
    with pytest.raises(SchemaError, match=r"test/gsm8k\.parquet .*expected 999 rows, found 4"):
        fetch("I", dest, only=["gsm8k"], progress=False)
    assert all_files(dest) == []

    src = root / "data" / entry.path
    df = generate_split("test", 4, seed=0, seen=set()).drop(columns=["ability"])
    df.to_parquet(src, index=False)
    monkeypatch.setattr(fetch_mod, "RELEASED", (dataclasses.replace(entry, sha256=sha256(src)),))
    with pytest.raises(SchemaError, match="missing column.*ability"):
        fetch("I", dest, only=["gsm8k"], progress=False)
    assert all_files(dest) == []


def test_import_from_local_folder_in_either_layout(tmp_path, release, monkeypatch):
    root, patched = release
    monkeypatch.setattr(fetch_mod, "_downloader", lambda progress: pytest.fail("network used"))
    got = fetch("I", tmp_path / "a", source=root, only=list(KEYS))  # release layout: root/data/test/...
    assert [g.action for g in got] == ["imported"] * 3
    got = fetch("I", tmp_path / "b", source=root / "data", only=["truthfulqa"])  # our layout
    assert sha256(got[0].path) == patched["truthfulqa"].sha256

    (root / "data" / patched["mmlu2k"].path).write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match=rf"expected {patched['mmlu2k'].sha256}, got {'[0-9a-f]' * 64}"):
        fetch("I", tmp_path / "c", source=root, only=["mmlu2k"])
    assert all_files(tmp_path / "c") == []
    with pytest.raises(FileNotFoundError, match=r"gsm_p1: none of .*/gsm_p1\.parquet"):
        fetch("I", tmp_path / "c", source=root, only=["gsm_p1"])


def test_cli_fetch_from_local_folder(tmp_path, release, capsys):
    root, _ = release
    dest = tmp_path / "data"
    assert main(["data", "fetch", "--track", "I", "--dest", str(dest), "--from", str(root),
                 "--only", "gsm8k,mmlu2k"]) == 0
    assert "gsm8k: imported" in capsys.readouterr().out
    assert all_files(dest) == ["test/gsm8k.parquet", "test/mmlu2k.parquet"]
    assert main(["data", "fetch", "--track", "I", "--dest", str(dest), "--from", str(root),
                 "--only", "gsm8k,nope"]) == 2
    assert "unknown dataset(s) nope" in capsys.readouterr().err


def test_real_pooch_download_over_loopback_http(tmp_path, release, monkeypatch):
    """pooch's own HTTP downloader, against a server on 127.0.0.1 serving the fake release."""
    import functools
    import http.server
    import threading

    from clipo.data import registry

    root, patched = release
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(registry, "RELEASE_BASE_URL", f"http://127.0.0.1:{server.server_port}/")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        got = fetch("I", tmp_path / "data", only=["truthfulqa"], progress=True)
    finally:
        server.shutdown()
        server.server_close()
    assert got[0].action == "downloaded"
    assert sha256(got[0].path) == patched["truthfulqa"].sha256
