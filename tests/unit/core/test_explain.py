"""Why an instant is not bookable: one reason per broken rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.domain import (
    AvailabilityPolicy,
    Busy,
    BusyKind,
    ReasonCode,
    date_exception,
    explain,
    vacation,
    weekly_windows,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)
POLICY = AvailabilityPolicy(
    "Europe/Berlin",
    weekly=(
        *weekly_windows(["mon", "tue", "wed", "thu", "fri"], "09:00", "12:00"),
        *weekly_windows(["sun"], "02:30", "04:00"),
    ),
    exceptions=(
        date_exception("2027-03-03", "unavailable", "10:00", "11:00"),
        date_exception("2027-03-04", "unavailable"),
    ),
    vacations=(vacation("2027-03-10", "2027-03-12"),),
    lead_time_hours=24,
    booking_window_days=30,
)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)  # type: ignore[misc]


def codes(
    at: datetime, busy: list[Busy] | None = None, duration: timedelta = HALF_HOUR
) -> list[str]:
    return [reason.code.value for reason in explain(POLICY, busy or [], NOW, at, duration).reasons]


def test_bookable_instant_has_no_reasons() -> None:
    result = explain(POLICY, [], NOW, local(2027, 3, 5, 9, 30), HALF_HOUR)
    assert result.bookable and result.reasons == []


def test_rule_reasons() -> None:
    assert codes(local(2027, 3, 5, 13)) == ["outside_rules"]
    assert codes(local(2027, 3, 5, 10, 15)) == ["off_grid"]
    assert codes(local(2027, 3, 5, 11, 30), duration=timedelta(hours=1)) == ["outside_rules"]
    assert codes(local(2027, 3, 3, 10, 30)) == ["exception"]
    assert codes(local(2027, 3, 4, 9)) == ["exception"]
    assert codes(local(2027, 3, 11, 9)) == ["vacation"]


def test_time_reasons() -> None:
    assert codes(local(2027, 3, 1, 9, 30)) == ["lead_time"]
    assert codes(local(2027, 4, 5, 9)) == ["booking_window"]
    assert codes(local(2027, 3, 5, 9), duration=timedelta(minutes=15)) == ["below_minimum_duration"]


def test_nonexistent_local_time_is_reported() -> None:
    assert "nonexistent_local_time" in codes(local(2027, 3, 28, 2, 30))
    assert codes(local(2027, 3, 28, 3)) == []


def test_busy_reasons_name_the_item() -> None:
    at = local(2027, 3, 5, 10)
    busy = [
        Busy(at, at + HALF_HOUR, BusyKind.EXTERNAL, "src-1", "Work Google calendar"),
        Busy(at, at + HALF_HOUR, BusyKind.BOOKING, "bk-1"),
        Busy(at, at + HALF_HOUR, BusyKind.HOLD, "hold-1"),
        Busy(at, at + HALF_HOUR, BusyKind.RELATED, "unit-2", "Parent apartment"),
        Busy(at + HALF_HOUR, at + 2 * HALF_HOUR, BusyKind.EXTERNAL, "src-1", "later"),
    ]
    result = explain(POLICY, busy, NOW, at, HALF_HOUR)
    assert not result.bookable
    assert [r.code for r in result.reasons] == [
        ReasonCode.BUSY_EXTERNAL,
        ReasonCode.BUSY_BOOKING,
        ReasonCode.BUSY_HOLD,
        ReasonCode.BUSY_RELATED,
    ]
    first = result.reasons[0]
    assert (first.kind, first.ref, first.label) == (
        BusyKind.EXTERNAL,
        "src-1",
        "Work Google calendar",
    )
    assert "Work Google calendar" in first.message


def test_several_reasons_are_all_listed() -> None:
    busy = [Busy(local(2027, 3, 1, 13), local(2027, 3, 1, 14), BusyKind.HOLD, "h")]
    assert codes(local(2027, 3, 1, 13), busy) == ["lead_time", "outside_rules", "busy_hold"]
