"""The console's units page as a property manager uses it: the tree of units, a child
added under a parent (which a booking of the parent then blocks, through the public slots
API), links refused in words, and what a viewer or another tenant may not do."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.db.models import Provider
from core.runtime import Runtime
from tests.integration.api.helpers import HOURS, client_for
from tests.integration.api.test_units import _book, _free_at_ten, _unit
from tests.integration.console.helpers import add_operator, make_tenant, post_form, sign_in


def _id_of(runtime: Runtime, slug: str) -> str:
    with runtime.sessions() as session:
        found = session.scalar(select(Provider.id).where(Provider.slug == slug))
    assert found is not None, slug
    return found


def test_a_manager_builds_the_tree_and_the_parent_blocks_the_new_child(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    api = client_for(runtime)
    casa = _unit(api, admin_headers, "casa-azul")
    add_operator(api, admin_headers, "default", "manager@example.org", "manager")
    client = client_for(runtime)
    sign_in(client, runtime, "manager@example.org")
    assert 'href="/admin/units"' in client.get("/admin").text

    room = post_form(client, "/admin/units", "/admin/units/children",
                     parent_id=casa, name="Room One", slug="room-one")  # fmt: skip
    assert room.status_code == 200 and "Child unit added" in room.text, room.text
    room_id = _id_of(runtime, "room-one")
    bed = post_form(client, "/admin/units", "/admin/units/children", parent_id=room_id,
                    name="Bed A", slug="bed-a", email="beds@casa.example")  # fmt: skip
    assert "Child unit added" in bed.text
    bed_id = _id_of(runtime, "bed-a")
    page = client.get("/admin/units").text
    # Three levels, nested: casa > room > bed.
    nested = re.search(
        rf'id="unit-{casa}".*?<ul>.*?id="unit-{room_id}".*?<ul>.*?id="unit-{bed_id}"', page, re.S
    )
    assert nested, page

    # The new bed is a real unit: with hours it is bookable, and a booking of the
    # apartment (two levels up) takes its time.
    hours = api.put(f"/api/v1/providers/{bed_id}/availability", json=HOURS, headers=admin_headers)
    assert hours.status_code == 200, hours.text
    assert _free_at_ten(api, bed_id)
    _book(api, casa)
    assert not _free_at_ten(api, bed_id)

    loop = post_form(client, "/admin/units", "/admin/units/links", parent_id=bed_id, child_id=casa)
    assert loop.status_code == 409 and "would make a loop" in loop.text
    assert 'id="error"' in loop.text and 'aria-describedby="error"' in loop.text
    taken = post_form(client, "/admin/units", "/admin/units/children",
                      parent_id=casa, name="Again", slug="room-one")  # fmt: skip
    assert taken.status_code == 409 and 'value="Again"' in taken.text
    blank = post_form(client, "/admin/units", "/admin/units/children",
                      parent_id=casa, name="", slug="x")  # fmt: skip
    assert blank.status_code == 400 and "name must be" in blank.text

    link_id = re.search(
        r'action="/admin/units/links/(rel_\w+)/remove"[^<]*<input[^>]*><button[^>]*"Unlink Bed A',
        page,
    )
    assert link_id, page
    gone = post_form(client, "/admin/units", f"/admin/units/links/{link_id[1]}/remove")
    assert "Link removed" in gone.text
    assert _free_at_ten(api, bed_id)  # no longer below the booked apartment
    assert f'id="unit-{room_id}"' in gone.text and not _free_at_ten(api, room_id)


def test_viewers_read_and_other_tenants_see_nothing(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    api = client_for(runtime)
    casa = _unit(api, admin_headers, "casa-azul")
    acme = make_tenant(api, admin_headers)
    add_operator(api, admin_headers, "default", "viewer@example.org", "viewer")
    add_operator(api, admin_headers, acme, "boss@acme.example", "owner")
    viewer = client_for(runtime)
    sign_in(viewer, runtime, "viewer@example.org")
    page = viewer.get("/admin/units").text
    assert f'id="unit-{casa}"' in page and 'id="add-child"' not in page
    refused = post_form(viewer, "/admin/units", "/admin/units/children",
                        parent_id=casa, name="Room", slug="room")  # fmt: skip
    assert refused.status_code == 403

    other = client_for(runtime)
    sign_in(other, runtime, "boss@acme.example")
    theirs = other.get("/admin/units").text
    assert casa not in theirs and 'id="no-units"' in theirs
    probe = post_form(other, "/admin/units", "/admin/units/children",
                      parent_id=casa, name="Room", slug="room")  # fmt: skip
    assert probe.status_code == 404
