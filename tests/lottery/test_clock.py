"""Times as the API writes them: UTC with a `Z`, whatever zone they were given in."""
from datetime import datetime, timedelta, timezone

from bson.tz_util import utc as bson_utc
from hypothesis import given, strategies as st

from lottery import clock

OFFSETS = st.one_of(st.none(), st.just(timezone.utc), st.just(bson_utc), st.just(clock.SHANGHAI),
                    st.integers(-900, 900).map(lambda minutes: timezone(timedelta(minutes=minutes))))


def isoformat_in_utc(value: datetime) -> str:
    """The definition: the instant in UTC, Python's `isoformat`, `+00:00` written `Z`."""
    utc = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return utc.isoformat().replace("+00:00", "Z")


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30)), OFFSETS)
def test_iso_is_the_instant_in_utc_as_isoformat_writes_it(moment, zone):
    value = moment.replace(tzinfo=zone)
    assert clock.iso(value) == isoformat_in_utc(value)


def test_iso_examples():
    assert clock.iso(datetime(2026, 12, 5, 6, 0, 0)) == "2026-12-05T06:00:00Z"  # naive: stored UTC
    assert clock.iso(datetime(2026, 12, 5, 6, 0, 0, 123000, tzinfo=bson_utc)) == "2026-12-05T06:00:00.123000Z"
    assert clock.iso(datetime(2026, 12, 5, 14, 0, 0, 5, tzinfo=clock.SHANGHAI)) == "2026-12-05T06:00:00.000005Z"
    assert clock.iso(None) is None
