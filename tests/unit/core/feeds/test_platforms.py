from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.feeds import EventKind, FeedResult, Platform, priority_of, read_feed
from core.feeds.platforms import detect, feed_platform

DATA = Path(__file__).parents[3] / "data" / "feeds"


def read(name: str) -> FeedResult:
    return read_feed(
        (DATA / name).read_bytes(),
        window_start=datetime(2025, 6, 1, tzinfo=UTC),
        window_end=datetime(2027, 1, 1, tzinfo=UTC),
        default_zone="Europe/Madrid",
        max_events=100,
    )


def test_airbnb_reservations_blocks_codes_and_phone() -> None:
    result = read("airbnb.ics")
    assert result.calendar_props.platform is Platform.AIRBNB
    infos = [e.platform for e in result.events]
    assert [i.kind for i in infos] == [
        EventKind.RESERVATION, EventKind.BLOCK, EventKind.RESERVATION, EventKind.BLOCK,
    ]  # fmt: skip
    assert infos[0].reservation_code == "HMABCD1234" and infos[0].phone_last4 == "2833"
    assert infos[2].reservation_code == "HMZZXY9876" and infos[2].phone_last4 == "0147"
    assert infos[1].reservation_code is None and infos[1].phone_last4 is None


def test_airbnb_rolling_not_available_window_is_a_block_at_the_horizon() -> None:
    events = read("airbnb.ics").events
    horizon = events[-1]
    assert horizon.platform.kind is EventKind.BLOCK
    assert horizon.platform.rolling_horizon
    assert not any(e.platform.rolling_horizon for e in events[:-1])


def test_airbnb_long_reserved_stay_at_horizon_stays_a_reservation() -> None:
    info = detect(uid="1418fb94e984-x@airbnb.com", summary="Reserved", description="",
                  feed=Platform.AIRBNB, at_horizon=True)  # fmt: skip
    assert info.kind is EventKind.RESERVATION and not info.rolling_horizon


def test_booking_com_closed_is_block() -> None:
    result = read("booking.ics")
    assert result.calendar_props.platform is Platform.BOOKING
    assert {e.platform.kind for e in result.events} == {EventKind.BLOCK}
    assert {e.platform.platform for e in result.events} == {Platform.BOOKING}


def test_vrbo_reserved_and_blocked_without_guest_name() -> None:
    result = read("vrbo.ics")
    assert result.calendar_props.platform is Platform.VRBO
    reserved, blocked = result.events
    assert reserved.platform.kind is EventKind.RESERVATION
    assert blocked.platform.kind is EventKind.BLOCK
    assert "Jane" not in repr(reserved.platform)


def test_motopress_booking_carries_airbnb_code() -> None:
    (event,) = read("motopress.ics").events
    assert event.platform.platform is Platform.MOTOPRESS_ICS
    assert event.platform.kind is EventKind.RESERVATION
    assert event.platform.reservation_code == "HMABCD1234"


def test_uid_beats_prodid() -> None:
    info = detect(uid="7f662ec65913-abc@airbnb.com", summary="Blocked", description="",
                  feed=Platform.GOOGLE)  # fmt: skip
    assert info.platform is Platform.AIRBNB and info.kind is EventKind.BLOCK
    vrbo = detect(uid="1-2@vrbo.com", summary="Reserved - Bo", description="", feed=Platform.AIRBNB)
    assert vrbo.platform is Platform.VRBO and vrbo.kind is EventKind.RESERVATION


def test_x_properties_name_the_platform() -> None:
    assert feed_platform(None, ["X-VRBO-LISTING-ID"]) is Platform.VRBO
    assert feed_platform("-//x//y//EN", ["X-MOTOPRESS-SITE"]) is Platform.MOTOPRESS_ICS


def test_generic_calendars() -> None:
    assert feed_platform("-//Google Inc//Google Calendar 70.9054//EN") is Platform.GOOGLE
    assert feed_platform("Microsoft Exchange Server 2010") is Platform.OUTLOOK
    assert feed_platform("-//Apple Inc.//macOS 14.5//EN") is Platform.APPLE
    assert feed_platform("-//Someone//Thing//EN") is Platform.GENERIC
    info = detect(uid="a@b", summary="Dentist", description="", feed=Platform.GOOGLE)
    assert info.kind is EventKind.BLOCK and info.reservation_code is None


def test_priorities_follow_the_matrix() -> None:
    assert [priority_of(p) for p in ("motopress_api", "motopress_ics", "airbnb",
            "booking.com", "vrbo", "manual", "generic_ics")] == [1, 2, 3, 3, 3, 4, 5]  # fmt: skip
    assert priority_of(Platform.GOOGLE) == 5 and priority_of("unheard-of") == 5
