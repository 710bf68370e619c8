"""The spool's files: records survive a reload in order, acked ones are trimmed, the bound drops the
oldest (and says how far), and a damaged tail costs only itself."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.telemetry.spool import FLOOR_FILE, Record, Spool, decode_records, directory_name


def records(first: int, count: int, size: int = 40) -> list[Record]:
    return [Record(sequence, "sensors.pi1.temperature", f"pi1:sensors.pi1.temperature:{sequence}",
                   b"x" * size) for sequence in range(first, first + count)]


def write(spool: Spool, batch: list[Record]) -> int:
    spool.append(batch)
    return spool.sync()


def reload(spool: Spool) -> tuple[Spool, list[Record]]:
    spool.close()
    again = Spool(spool.directory, spool.limit, spool.segment_size)
    return again, again.load().records


def test_records_come_back_in_order_after_a_restart(tmp_path):
    spool = Spool(tmp_path, limit=1 << 20, segment_size=300)
    assert spool.load().records == []
    written = records(0, 20)
    write(spool, written[:7])
    write(spool, written[7:])
    assert len(spool.segments) > 1  # rotated
    again, loaded = reload(spool)
    assert loaded == written
    assert again.next_sequence == 20


def test_the_floor_hides_acked_records_and_deletes_their_segments(tmp_path):
    spool = Spool(tmp_path, limit=1 << 20, segment_size=300)
    spool.load()
    written = records(0, 20)
    for start in range(0, 20, 2):
        write(spool, written[start:start + 2])
    segments_before = len(spool.segments)
    spool.sync(floor=12)
    assert len(spool.segments) < segments_before
    assert all(path.stem.isdigit() for path in tmp_path.glob("*.seg"))
    assert (tmp_path / FLOOR_FILE).read_text() == "12"
    again, loaded = reload(spool)
    assert [record.sequence for record in loaded] == list(range(12, 20))
    assert again.floor == 12


def test_all_acked_leaves_no_segment_after_a_reload_and_numbering_goes_on(tmp_path):
    spool = Spool(tmp_path, limit=1 << 20)
    spool.load()
    write(spool, records(0, 5))
    spool.sync(floor=5)
    again, loaded = reload(spool)
    assert loaded == []
    assert list(tmp_path.glob("*.seg")) == []
    assert again.next_sequence == 5


def test_past_the_bound_the_oldest_segments_go_and_the_floor_says_up_to_where(tmp_path):
    spool = Spool(tmp_path, limit=2000, segment_size=500)
    spool.load()
    written = records(0, 100)  # 100 x 92 bytes: far over 2000
    for start in range(0, 100, 5):
        write(spool, written[start:start + 5])
        assert spool.size <= spool.limit
    assert spool.floor > 0
    again, loaded = reload(spool)
    assert [record.sequence for record in loaded] == list(range(spool.floor, 100))
    assert sum(path.stat().st_size for path in tmp_path.glob("*.seg")) <= 2000


def test_a_torn_last_record_is_skipped_and_reported_and_new_records_follow(tmp_path):
    spool = Spool(tmp_path, limit=1 << 20)
    spool.load()
    write(spool, records(0, 5))
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-10])  # a power cut in the middle of the last record
    again = Spool(tmp_path, limit=1 << 20)
    loaded = again.load()
    assert [record.sequence for record in loaded.records] == [0, 1, 2, 3]
    assert len(loaded.damaged) == 1 and segment.name in loaded.damaged[0]
    write(again, records(4, 3))
    _, after = reload(again)
    assert [record.sequence for record in after] == [0, 1, 2, 3, 4, 5, 6]


def test_a_flipped_byte_ends_that_segment_at_the_record_before(tmp_path):
    spool = Spool(tmp_path, limit=1 << 20)
    spool.load()
    written = records(0, 5)
    write(spool, written)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[written[0].size * 2 + 20] ^= 0xFF  # inside the third record's body
    segment.write_bytes(bytes(data))
    loaded = Spool(tmp_path, limit=1 << 20).load()
    assert [record.sequence for record in loaded.records] == [0, 1]
    assert loaded.damaged


def test_an_unreadable_floor_file_counts_as_none(tmp_path):
    spool = Spool(tmp_path, limit=1 << 20)
    spool.load()
    write(spool, records(0, 3))
    spool.close()
    (tmp_path / FLOOR_FILE).write_text("garbage")
    assert [record.sequence for record in Spool(tmp_path, limit=1 << 20).load().records] == [0, 1, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8), st.binary(max_size=200))
def test_any_bytes_after_valid_records_leave_the_valid_prefix(payloads, junk):
    valid = [Record(index, "s.ü", f"id-{index}", payload) for index, payload in enumerate(payloads)]
    data = b"".join(record.encode() for record in valid)
    decoded, end = decode_records(data + junk)
    assert decoded[:len(valid)] == valid
    assert end >= len(data)


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    decoded, end = decode_records(data)
    assert 0 <= end <= len(data)
    assert all(isinstance(record, Record) for record in decoded)


def test_directory_names_are_safe_and_distinct():
    names = {directory_name(subject) for subject in ("sensors.pi1.temp", "sensors.pi1/temp", "sensors.pi1_temp",
                                                     "../../etc", "")}
    assert len(names) == 5
    assert all("/" not in name and not name.startswith(".") for name in names)


def test_appended_records_are_on_disk_before_any_sync(tmp_path):
    """A killed bridge (not a power cut) loses nothing it appended."""
    spool = Spool(tmp_path, limit=1 << 20)
    spool.load()
    spool.append(records(0, 3))
    assert [record.sequence for record in Spool(tmp_path, limit=1 << 20).load().records] == [0, 1, 2]
