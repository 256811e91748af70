"""Rental units and how they block each other: parent/child relationships (seed 003 §3.5).

A relationship joins two units of one tenant. ``block_child_on_parent``: a reservation of
the parent (the whole apartment) blocks the child (a room), and through the child its own
children (the beds), at any depth. ``block_parent_on_all_children``: the parent is blocked
only while every such child is busy. A unit may have several parents; a relationship that
would close a loop, at any depth, is refused, as are self-links and duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.db.models import AuditEntry, Provider, UnitRelationship, new_id
from core.services.access import Caller, Grant, visible_provider
from core.services.errors import Forbidden, InvalidInput, NotFoundError, RelationshipRefused
from core.services.providers import create_provider

# Far deeper than any property (building → apartment → room → bed is four).
MAX_DEPTH = 16


@dataclass(frozen=True)
class Link:
    """A relationship as the API shows it, with both units' names."""

    row: UnitRelationship
    parent_name: str
    child_name: str


def create_relationship(
    session: Session,
    caller: Caller,
    *,
    parent_id: str,
    child_id: str,
    block_child_on_parent: bool,
    block_parent_on_all_children: bool,
    now: datetime,
) -> Link:
    """A new relationship between two of the caller's units."""
    caller.require(Grant.WRITE)
    parent = visible_provider(session, caller, parent_id)
    child = visible_provider(session, caller, child_id)
    if parent.id == child.id:
        raise InvalidInput("a unit cannot be its own parent", code="self_link")
    for unit in (parent, child):
        if unit.kind != "unit":
            raise InvalidInput(
                f"{unit.name} is a person, not a unit: relationships join units"
                " (PATCH the provider with kind 'unit' first)",
                code="not_a_unit",
            )
    same = select(UnitRelationship.id).where(
        UnitRelationship.parent_id == parent.id, UnitRelationship.child_id == child.id
    )
    if session.scalar(same) is not None:
        raise RelationshipRefused(f"{child.name} is already a child of {parent.name}")
    if child.id in ancestors(session, parent.id) | {parent.id}:
        raise RelationshipRefused(
            f"{child.name} is already above {parent.name}: the link would make a loop"
        )
    if depth_below(session, child.id) + len(ancestors(session, parent.id)) + 2 > MAX_DEPTH:
        raise RelationshipRefused(f"unit trees are at most {MAX_DEPTH} levels deep")
    row = UnitRelationship(
        id=new_id("rel"),
        tenant_id=parent.tenant_id,
        parent_id=parent.id,
        child_id=child.id,
        block_child_on_parent=block_child_on_parent,
        block_parent_on_all_children=block_parent_on_all_children,
        priority=0,
        active=True,
        created_at=now,
    )
    session.add(row)
    session.add(_audit(row, caller, "unit.linked", now))
    session.flush()
    return Link(row, parent.name, child.name)


def delete_relationship(
    session: Session, caller: Caller, relationship_id: str, now: datetime
) -> None:
    caller.require(Grant.WRITE)
    row = _visible(session, caller, relationship_id)
    session.add(_audit(row, caller, "unit.unlinked", now))
    session.delete(row)


def relationships_of(session: Session, caller: Caller, provider_id: str) -> list[Link]:
    """The relationships in which the provider is parent or child, parents first."""
    unit = visible_provider(session, caller, provider_id)
    rows = session.scalars(
        select(UnitRelationship)
        .where(or_(UnitRelationship.parent_id == unit.id, UnitRelationship.child_id == unit.id))
        .order_by(UnitRelationship.created_at, UnitRelationship.id)
    ).all()
    ids = {r.parent_id for r in rows} | {r.child_id for r in rows}
    named = session.execute(select(Provider.id, Provider.name).where(Provider.id.in_(ids)))
    names = {ident: name for ident, name in named}
    links = [Link(r, names.get(r.parent_id, ""), names.get(r.child_id, "")) for r in rows]
    return sorted(links, key=lambda link: link.row.parent_id == unit.id)


@dataclass(frozen=True)
class TreeNode:
    """A unit in the tenant's tree, with the link that put it there (None for a root)."""

    unit: Provider
    link: UnitRelationship | None
    children: list[TreeNode]


@dataclass(frozen=True)
class UnitTree:
    roots: list[TreeNode]
    units: list[Provider]  # every unit the caller sees, by name


# A unit with several parents shows under each; a tree this big is not read on one page.
MAX_TREE_NODES = 2000


def unit_tree(session: Session, caller: Caller) -> UnitTree:
    """The caller's units as a forest: roots are units without a visible parent."""
    query = select(Provider).where(Provider.tenant_id == caller.tenant_id, Provider.kind == "unit")
    if caller.providers is not None:
        query = query.where(Provider.id.in_(caller.providers))
    units = list(session.scalars(query.order_by(Provider.name, Provider.id)))
    by_id = {u.id: u for u in units}
    links = session.scalars(
        select(UnitRelationship)
        .where(
            UnitRelationship.tenant_id == caller.tenant_id,
            UnitRelationship.parent_id.in_(by_id),
            UnitRelationship.child_id.in_(by_id),
        )
        .order_by(UnitRelationship.created_at, UnitRelationship.id)
    ).all()
    below: dict[str, list[UnitRelationship]] = {}
    for link in links:
        below.setdefault(link.parent_id, []).append(link)
    budget = [MAX_TREE_NODES]

    def grow(unit: Provider, link: UnitRelationship | None, depth: int) -> TreeNode:
        budget[0] -= 1
        kids = below.get(unit.id, []) if depth < MAX_DEPTH and budget[0] > 0 else []
        ordered = sorted(kids, key=lambda k: by_id[k.child_id].name)
        return TreeNode(unit, link, [grow(by_id[k.child_id], k, depth + 1) for k in ordered])

    children = {link.child_id for link in links}
    roots = [grow(u, None, 0) for u in units if u.id not in children]
    return UnitTree(roots, units)


def add_child_unit(
    session: Session,
    caller: Caller,
    *,
    parent_id: str,
    name: str,
    slug: str,
    email: str | None,
    now: datetime,
) -> Link:
    """A new unit under parent_id (its zone, and its address unless another is given),
    blocked whenever the parent is booked."""
    caller.require(Grant.WRITE)
    if caller.providers is not None:
        raise Forbidden("a manager of some units only may link them, not create units")
    parent = visible_provider(session, caller, parent_id)
    if parent.kind != "unit":
        raise InvalidInput(f"{parent.name} is a person, not a unit", code="not_a_unit")
    child = create_provider(
        session, name=name, email=email or parent.email, timezone=parent.timezone, slug=slug,
        now=now, kind="unit", tenant_id=parent.tenant_id,
    )  # fmt: skip
    session.flush()
    return create_relationship(
        session, caller, parent_id=parent.id, child_id=child.id, block_child_on_parent=True,
        block_parent_on_all_children=False, now=now,
    )  # fmt: skip


def ancestors(session: Session, unit_id: str) -> set[str]:
    """Every unit above unit_id, by any relationship (active or not), at any depth."""
    return _walk(session, unit_id, up=True)


def depth_below(session: Session, unit_id: str) -> int:
    """How many levels of children hang below unit_id (0 for a leaf)."""
    depth, level = 0, {unit_id}
    while level and depth <= MAX_DEPTH:
        level = set(
            session.scalars(
                select(UnitRelationship.child_id).where(UnitRelationship.parent_id.in_(level))
            )
        )
        depth += bool(level)
    return depth


def _walk(session: Session, start: str, *, up: bool) -> set[str]:
    near, far = (
        (UnitRelationship.child_id, UnitRelationship.parent_id)
        if up
        else (UnitRelationship.parent_id, UnitRelationship.child_id)
    )
    seen: set[str] = set()
    level = {start}
    for _ in range(MAX_DEPTH + 1):
        level = set(session.scalars(select(far).where(near.in_(level)))) - seen
        if not level:
            break
        seen |= level
    return seen


def _visible(session: Session, caller: Caller, relationship_id: str) -> UnitRelationship:
    row = session.get(UnitRelationship, relationship_id)
    if row is None or not (
        caller.sees(row.tenant_id, row.parent_id) and caller.sees(row.tenant_id, row.child_id)
    ):
        raise NotFoundError("relationship", relationship_id)
    return row


def _audit(row: UnitRelationship, caller: Caller, action: str, now: datetime) -> AuditEntry:
    return AuditEntry(
        tenant_id=row.tenant_id, at=now, actor=caller.name, action=action,
        subject_type="provider", subject_id=row.child_id,
        data={"relationship": row.id, "parent": row.parent_id, "child": row.child_id,
              "block_child_on_parent": row.block_child_on_parent,
              "block_parent_on_all_children": row.block_parent_on_all_children},
    )  # fmt: skip
