"""A damaged log is read past its damage and says so; `teleop episodes verify` never destroys
intact data. Real episode folders (tests/recorder/episode_factory.py), real bytes flipped, the
real CLI (in a subprocess for the headline case)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from episode_factory import make_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.episode import LOG_NAME, list_episodes, read_meta, recover, verify_episode
from recorder.log import MAGIC, LogRecord, LogWriter, frame_header, read_records, scan, verify
from recorder.reader import load_episode
from teleop.cli import main


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    b = bytearray(path.read_bytes())
    b[offset] ^= mask
    path.write_bytes(bytes(b))


def _seconds(recs: list[LogRecord], i: int) -> float:
    return round((recs[i].recv_ns - recs[0].recv_ns) / 1e9, 6)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LogRecord]]:
    """One factory episode (~1850 records) and every record of its intact log."""
    ds = tmp_path_factory.mktemp("pristine") / "ds"
    make_episode(ds, 0, seconds=1.5)
    return ds, list(read_records(ds / "episode_000000" / LOG_NAME))


@pytest.fixture
def episode(pristine, tmp_path) -> tuple[Path, Path, list[LogRecord]]:
    """A fresh copy: (dataset, episode folder, the intact records)."""
    ds = tmp_path / "ds"
    shutil.copytree(pristine[0], ds)
    return ds, ds / "episode_000000", pristine[1]


def _mid_frame(rec: LogRecord) -> int:
    """A byte inside the record's body (past its topic and bus header)."""
    return rec.offset + 16 + len(rec.frame) * 3 // 4


# -- the headline case: one flipped byte in the middle ---------------------------------------------


def test_cli_verify_keeps_every_intact_record_after_a_byte_flip(episode, tmp_path):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    k = len(recs) // 2
    _flip(log, _mid_frame(recs[k]))
    damaged = log.read_bytes()
    src, topic, seq = frame_header(recs[k].frame)

    out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "verify", str(ds), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr  # data was lost
    [row] = json.loads(out.stdout)
    intact = [r for i, r in enumerate(recs) if i != k]
    assert row["records"] == len(intact) == len(recs) - 1
    assert row["records_lost"] == 1 and row["messages_lost"] == 1 and row["damaged"] and not row["truncated"]
    [d] = row["damage"]
    assert d["offset"] == recs[k].offset and d["bytes"] == 16 + len(recs[k].frame) and d["records_lost"] == 1
    assert d["from_s"] == _seconds(recs, k - 1) and d["to_s"] == _seconds(recs, k + 1)
    assert [(s["source"], s["topic"], s["lost"], s["last_seq"], s["next_seq"]) for s in d["streams"]] == \
        [(src, topic, 1, seq - 1, seq + 1)]
    # nothing cut, nothing deleted: the log is byte for byte what it was, and reads back every intact record
    assert log.read_bytes() == damaged and sorted(p.name for p in folder.iterdir()) == [LOG_NAME, "meta.json", "video"]
    assert list(read_records(log)) == intact
    # the episode is marked, its status kept
    meta = read_meta(folder)
    assert meta["status"] == "complete" and meta["damage"]["records_lost"] == 1
    assert meta["damage"]["regions"][0]["streams"][0]["topic"] == topic
    assert any("log damaged" in e and topic in e for e in meta["errors"])
    [e] = list_episodes(ds)
    assert e.damaged and e.status == "complete"
    assert json.loads((ds / "index.json").read_text())["episodes"][0]["damaged"] is True
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "list", str(ds)],
                         capture_output=True, text=True, timeout=60)
    assert "DAMAGED" in out.stdout
    # a second verify says the same, and does not repeat the error line
    n_errors = len(meta["errors"])
    assert main(["episodes", "verify", str(ds)]) == 1
    assert len(read_meta(folder)["errors"]) == n_errors and log.read_bytes() == damaged

    # inspect says what was lost and uses every intact record
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "inspect", str(folder), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["log"]["damaged"] and rep["log"]["records"] == len(intact) and rep["log"]["marked"]
    n = {s["topic"]: s["n"] for s in rep["streams"]}
    truth = {}
    for r in recs:
        truth[r.topic] = truth.get(r.topic, 0) + 1
    assert n == {t: c - (t == topic) for t, c in truth.items()}
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "inspect", str(folder)],
                         capture_output=True, text=True, timeout=60)
    assert "DAMAGED log" in out.stdout and "1 record lost" in out.stdout and topic in out.stdout


def test_export_says_an_episode_is_damaged_and_uses_every_intact_record(episode, tmp_path, capsys):
    ds, folder, recs = episode
    make_episode(ds, 1, seconds=0.6, seed=3)
    k = len(recs) // 3
    _flip(folder / LOG_NAME, _mid_frame(recs[k]))
    ep = load_episode(folder)
    assert ep.damaged and ep.log.records == len(recs) - 1
    assert sum(len(s) for s in ep.streams.values()) == len(recs) - 1

    assert main(["export", str(ds), "--format", "hdf5", "--out", str(tmp_path / "a.hdf5"), "--fps", "30"]) == 0
    cap = capsys.readouterr()
    summary = json.loads(cap.out)
    assert summary["episodes"] == 2
    [d] = summary["damaged"]
    assert d["episode"] == str(folder) and d["records_lost"] == 1 and d["records_kept"] == len(recs) - 1
    assert not d["skipped"]
    assert "warning: episode_000000: damaged log" in cap.err

    import h5py

    with h5py.File(tmp_path / "a.hdf5") as f:
        assert sorted(f["data"][k].attrs["source_episode"] for k in f["data"]) == ["episode_000000", "episode_000001"]

    assert main(["export", str(ds), "--format", "hdf5", "--out", str(tmp_path / "b.hdf5"), "--fps", "30",
                 "--skip-damaged", "--json"]) == 0
    cap = capsys.readouterr()
    summary = json.loads(cap.out)
    assert summary["episodes"] == 1 and summary["skipped"] == 1 and summary["damaged"][0]["skipped"]
    assert "damaged log" in summary["skipped_episodes"][0]["reason"] and "left out" in cap.err


# -- torn tails ------------------------------------------------------------------------------------


def test_a_torn_tail_is_still_cut_and_its_bytes_are_kept(episode, capsys):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    good = log.read_bytes()
    tail = good[recs[-1].offset:][:-5]  # the last record again, cut short
    log.write_bytes(good + tail)
    assert main(["episodes", "verify", str(ds)]) == 1  # a torn tail is data lost too
    out = capsys.readouterr().out
    assert "torn tail" in out and "log.tlog.torn-1" in out
    assert log.read_bytes() == good and (folder / "log.tlog.torn-1").read_bytes() == tail
    meta = read_meta(folder)
    assert meta["torn_tails"][0]["bytes"] == len(tail) and meta["torn_tails"][0]["saved"] == "log.tlog.torn-1"
    assert "damage" not in meta and not list_episodes(ds)[0].damaged
    assert main(["episodes", "verify", str(ds)]) == 0  # now intact
    # zeros after the last record (a file system that extended the file) are a torn tail too
    log.write_bytes(good + bytes(5000))
    rep = verify(log, truncate=True)
    assert rep.scan.torn_reason == "zeros" and rep.torn_bytes == 5000 and log.read_bytes() == good
    assert Path(rep.saved).name == "log.tlog.torn-2"


def test_a_complete_last_record_with_a_bad_crc_is_damage_not_a_torn_tail(episode):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    _flip(log, _mid_frame(recs[-1]))
    before = log.read_bytes()
    sc = scan(log)
    assert sc.torn_bytes == 0 and sc.records == len(recs) - 1
    [d] = sc.damage
    assert d.records_lost == 1 and d.offset == recs[-1].offset and d.after_recv_ns is None
    row = verify_episode(folder)
    assert not row["truncated"] and log.read_bytes() == before and read_meta(folder)["damage"]["records_lost"] == 1


def test_dry_run_changes_no_file(episode, capsys):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    _flip(log, _mid_frame(recs[100]))
    log.write_bytes(log.read_bytes() + b"\x40\x00\x00\x00\x01\x02")  # and a torn tail
    meta = read_meta(folder)
    meta["status"] = "recording"  # a crashed recorder (no pid: not alive)
    (folder / "meta.json").write_text(json.dumps(meta))
    before = _snapshot(ds)
    assert main(["episodes", "verify", str(ds), "--dry-run", "--json"]) == 1
    [row] = json.loads(capsys.readouterr().out)
    assert _snapshot(ds) == before
    assert row["records"] == len(recs) - 1 and row["records_lost"] == 1 and row["torn_bytes"] == 6
    assert not row["truncated"] and row["dry_run"] and row["status"] == "recording"
    # the real run finds the same, then cuts only the tail and recovers the episode
    assert main(["episodes", "verify", str(ds), "--json"]) == 1
    [real] = json.loads(capsys.readouterr().out)
    assert real["damage"] == row["damage"] and real["truncated"] and real["status"] == "recovered"
    meta = read_meta(folder)
    assert meta["status"] == "recovered" and meta["damage"]["records_lost"] == 1 and meta["torn_tails"]
    assert "recovered" in meta["errors"][-1] and "damaged region" in meta["errors"][-1]


# -- several regions, garbage, broken lengths ------------------------------------------------------


def test_several_damaged_regions_are_each_reported(episode):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    ks = [5, 700, 1400]
    for k in ks:
        _flip(log, _mid_frame(recs[k]), 0x04)
    sc = scan(log)
    assert sc.records == len(recs) - 3 and sc.records_lost == 3 and sc.torn_bytes == 0
    assert [d.offset for d in sc.damage] == [recs[k].offset for k in ks]
    for d, k in zip(sc.damage, ks, strict=True):
        src, topic, _ = frame_header(recs[k].frame)
        assert d.records_lost == 1 and [(s.source, s.topic, s.lost) for s in d.streams] == [(src, topic, 1)]
        assert (d.before_recv_ns, d.after_recv_ns) == (recs[k - 1].recv_ns, recs[k + 1].recv_ns)
    assert list(read_records(log)) == [r for i, r in enumerate(recs) if i not in ks]
    verify_episode(folder)
    assert len(read_meta(folder)["damage"]["regions"]) == 3


def test_garbage_between_records_loses_nothing(episode):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    good = log.read_bytes()
    at = recs[900].offset
    junk = random.Random(7).randbytes(1000)
    log.write_bytes(good[:at] + junk + good[at:])
    sc = scan(log)
    assert sc.records == len(recs) and sc.torn_bytes == 0
    [d] = sc.damage
    assert d.offset == at and d.length == len(junk) and d.records_lost is None and d.messages_lost == 0
    assert [r.frame for r in read_records(log)] == [r.frame for r in recs]
    row = verify_episode(folder)
    assert row["records_missing"] == 0  # by the count the recorder wrote into meta.json


def test_a_flipped_length_field_breaks_the_chain_but_resync_finds_the_rest(episode):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    k = 1000
    _flip(log, recs[k].offset + 2, 0x10)  # the length grows by 1 MB: it no longer lands on the next record
    sc = scan(log)
    [d] = sc.damage
    src, topic, _ = frame_header(recs[k].frame)
    assert d.records_lost is None and d.offset == recs[k].offset and d.length == 16 + len(recs[k].frame)
    assert [(s.source, s.topic, s.lost) for s in d.streams] == [(src, topic, 1)]
    assert sc.records == len(recs) - 1 and list(read_records(log)) == [r for i, r in enumerate(recs) if i != k]


def test_a_damaged_magic_is_read_past(episode):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    _flip(log, 3)
    sc = scan(log)
    assert sc.records == len(recs) and sc.damage[0].what == "magic" and sc.damage[0].records_lost == 0
    assert not log.read_bytes().startswith(MAGIC)


# -- crash recovery --------------------------------------------------------------------------------


def test_recover_cuts_the_torn_tail_keeps_its_bytes_and_reports_mid_file_damage(episode):
    ds, folder, recs = episode
    log = folder / LOG_NAME
    meta = read_meta(folder)
    meta["status"] = "recording"
    (folder / "meta.json").write_text(json.dumps(meta))
    _flip(log, _mid_frame(recs[300]))
    damaged = log.read_bytes()
    log.write_bytes(damaged + damaged[recs[10].offset:recs[11].offset][:-1])
    m = recover(folder)
    assert m["status"] == "recovered" and m["damage"]["records_lost"] == 1
    assert log.read_bytes() == damaged and (folder / "log.tlog.torn-1").exists()
    assert "recovered 1850" not in m["errors"][-1] and f"recovered {len(recs) - 1} log records" in m["errors"][-1]


# -- the command line's contract -------------------------------------------------------------------


def test_verify_of_a_path_that_is_no_dataset_exits_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "verify", str(tmp_path / "nonexistent")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no such dataset or episode" in out.stderr
    (tmp_path / "empty").mkdir()
    assert main(["episodes", "verify", str(tmp_path / "empty")]) == 2


def test_an_intact_dataset_verifies_with_exit_0(episode, capsys):
    ds, folder, _ = episode
    before = (folder / LOG_NAME).read_bytes()
    assert main(["episodes", "verify", str(ds)]) == 0
    assert "intact" in capsys.readouterr().out and (folder / LOG_NAME).read_bytes() == before
    assert "damage" not in read_meta(folder)


# -- the property: whatever single bytes are flipped, every untouched record comes back ------------


_TOPIC = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frames=st.lists(st.tuples(_TOPIC, st.binary(max_size=80)), min_size=1, max_size=30),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3),
)
def test_every_untouched_record_is_read_back(tmp_path_factory, frames, flips):
    path = tmp_path_factory.mktemp("prop") / "log.tlog"
    w = LogWriter(path)
    for i, (topic, body) in enumerate(frames):
        w.append(topic.encode() + b"\0" + body, 1000 + i)
    w.close()
    recs = list(read_records(path))
    data = bytearray(path.read_bytes())
    xor: dict[int, int] = {}
    for where, mask in flips:
        at = int(where * len(data))
        data[at] ^= mask
        xor[at] = xor.get(at, 0) ^ mask
    touched = {at for at, m in xor.items() if m}  # (the same byte flipped back is untouched)
    path.write_bytes(bytes(data))
    want = [r for r in recs if not any(r.offset <= t < r.offset + 16 + len(r.frame) for t in touched)]
    sc = scan(path)
    got = list(read_records(path))
    assert got == want
    assert sc.records == len(got)
    os.unlink(path)
