"""The feed's cursor: ids that commit out of order are sent once each and none is skipped."""
from geodata.maps.feed import GAP_WAIT_S, Cursor, FeedEvent


def ev(i: int) -> FeedEvent:
    import datetime as dt

    return FeedEvent(i, "report", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "WT1", "problem", "环境", "Env", "sanitation",
                     "41010200100101", "格", "41010200100100", "t", 113.6, 34.7)


def test_in_order_moves_on():
    c = Cursor(resume=5)
    assert [e.id for e in c.take([ev(6), ev(7)], now=0)] == [6, 7]
    assert c.resume == 7 and not c.gaps


def test_a_gap_is_waited_for_and_nothing_is_sent_twice():
    c = Cursor(resume=5)
    assert [e.id for e in c.take([ev(7)], now=0)] == [7]     # 6 not committed yet
    assert c.resume == 5 and set(c.gaps) == {6}
    assert [e.id for e in c.take([ev(6), ev(7)], now=1)] == [6]   # 6 arrives: only it is new
    assert c.resume == 7 and not c.gaps
    assert c.take([ev(7)], now=2) == []


def test_a_gap_is_given_up_after_the_wait():
    c = Cursor(resume=5)
    c.take([ev(7), ev(8)], now=0)
    assert c.resume == 5
    c.take([ev(7), ev(8)], now=GAP_WAIT_S + 1)      # 6 was a rolled-back id
    assert c.resume == 8 and not c.gaps and not c.sent


def test_walls_that_woke_before_a_read_share_it_and_a_later_one_reads_again():
    import time

    from geodata.maps.feed import SharedReads

    reads, calls = SharedReads(), []

    def read():
        calls.append(1)
        return [ev(6)]

    woke = time.monotonic()
    first = reads.read("street", 5, woke, read)
    second = reads.read("street", 5, woke, read)           # woke before the first read began
    assert first == second == [ev(6)] and len(calls) == 1
    reads.read("street", 6, woke, read)                    # another cursor: its own read
    assert len(calls) == 2
    reads.read("street", 6, time.monotonic() + 1, read)    # woke after that read: it may miss a commit
    assert len(calls) == 3
    reads.read("community", 6, woke, read)                 # another scope never shares
    assert len(calls) == 4
