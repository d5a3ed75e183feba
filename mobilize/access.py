"""Who may see and do what: roles scoped to an org subtree, and what each role sees of a person.

Pure: no session, no request. :class:`Principal` is the logged-in operator as the rest of the code
sees it; its ``scope_path`` is the materialized path of the unit it is scoped to (``None``: the
whole tree).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rosters.phones import mask_phone

__all__ = ["Role", "Principal", "ROLE_LEVEL", "mask_name", "mask_phone"]


class Role(StrEnum):
    """Operator roles (角色)."""

    ADMIN = "admin"  # 系统管理员
    CITY_COMMANDER = "city_commander"  # 市级指挥
    DISTRICT_COMMANDER = "district_commander"  # 区县指挥
    STREET_COMMANDER = "street_commander"  # 街道指挥
    COMMUNITY_COMMANDER = "community_commander"  # 社区书记/指挥
    DRILL_PLANNER = "drill_planner"  # 演练策划


ROLE_ZH = {
    Role.ADMIN: "系统管理员",
    Role.CITY_COMMANDER: "市级指挥中心",
    Role.DISTRICT_COMMANDER: "区县指挥中心",
    Role.STREET_COMMANDER: "街道指挥中心",
    Role.COMMUNITY_COMMANDER: "社区书记",
    Role.DRILL_PLANNER: "演练策划",
}

#: The org level a commander role must be scoped to.
ROLE_LEVEL = {
    Role.CITY_COMMANDER: "city",
    Role.DISTRICT_COMMANDER: "district",
    Role.STREET_COMMANDER: "street",
    Role.COMMUNITY_COMMANDER: "community",
}

_WRITERS = {Role.ADMIN, Role.CITY_COMMANDER, Role.DISTRICT_COMMANDER, Role.STREET_COMMANDER,
            Role.COMMUNITY_COMMANDER}
# Those who phone people themselves see full numbers in lists; the others see them masked.
_FULL_PHONE_IN_LISTS = {Role.ADMIN, Role.STREET_COMMANDER, Role.COMMUNITY_COMMANDER}
_ADDRESSES = {Role.ADMIN, Role.STREET_COMMANDER, Role.COMMUNITY_COMMANDER}


def mask_name(name: str | None) -> str | None:
    """Return ``name`` with all but its first character hidden: ``王小明`` → ``王**``.

    >>> mask_name("王小明")
    '王**'
    """
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


@dataclass(frozen=True, slots=True)
class Principal:
    """The logged-in operator: role and the subtree it covers."""

    operator_id: int
    username: str
    role: Role
    scope_unit_id: int | None
    scope_path: str | None

    @property
    def actor(self) -> str:
        return f"operator:{self.operator_id}"

    def covers(self, path: str) -> bool:
        """Return whether the unit at materialized ``path`` lies inside this operator's subtree."""
        return self.scope_path is None or path.startswith(self.scope_path)

    @property
    def can_write_rosters(self) -> bool:
        return self.role in _WRITERS

    @property
    def can_export(self) -> bool:
        return self.role in _WRITERS

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def sees_full_phone_in_lists(self) -> bool:
        return self.role in _FULL_PHONE_IN_LISTS

    @property
    def sees_full_phone(self) -> bool:
        """Whether a person's own page shows the full number (everyone who may call them)."""
        return self.role in _WRITERS

    @property
    def sees_names(self) -> bool:
        return self.role is not Role.DRILL_PLANNER

    @property
    def sees_addresses(self) -> bool:
        return self.role in _ADDRESSES
