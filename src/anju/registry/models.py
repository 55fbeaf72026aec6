"""Tables of the registry: standard addresses, people, houses, units, vehicles and more.

Every row that belongs to a community carries ``community_id``: scope filters and, later,
partitioning lead with it.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.core.db import Base, BigId, IdMixin, TimestampMixin
from anju.org.models import Grid, OrgUnit, enum_column


def community_fk() -> Mapped[int]:
    return mapped_column(BigId, ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)


class VerifiedMixin:
    """A record confirmed by a person of the right role (核实); drives verification rates."""

    verified_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    verified_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


# --- standard addresses (标准地址) -------------------------------------------------------


class Building(IdMixin, TimestampMixin, Base):
    """建筑物 — a building of a community."""

    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("community_id", "number"),)

    community_id: Mapped[int] = community_fk()
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60))
    address_code: Mapped[str] = mapped_column(String(40), unique=True)
    full_address: Mapped[str] = mapped_column(String(300))
    floors: Mapped[int] = mapped_column(Integer, default=1)
    grid_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("grids.id", ondelete="SET NULL"))

    community: Mapped[OrgUnit] = relationship()
    grid: Mapped[Grid | None] = relationship()

    def __str__(self) -> str:
        return self.name


class BuildingUnit(IdMixin, TimestampMixin, Base):
    """单元 — a stairway unit of a building."""

    __tablename__ = "building_units"
    __table_args__ = (UniqueConstraint("building_id", "number"),)

    community_id: Mapped[int] = community_fk()
    building_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("buildings.id", ondelete="RESTRICT"), index=True
    )
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60))
    address_code: Mapped[str] = mapped_column(String(40), unique=True)
    full_address: Mapped[str] = mapped_column(String(300))

    community: Mapped[OrgUnit] = relationship()
    building: Mapped[Building] = relationship()

    def __str__(self) -> str:
        return self.full_address


class Floor(IdMixin, Base):
    """楼层 — a floor of a unit; created with the first house on it."""

    __tablename__ = "floors"
    __table_args__ = (UniqueConstraint("unit_id", "number"),)

    community_id: Mapped[int] = community_fk()
    unit_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("building_units.id", ondelete="RESTRICT"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    address_code: Mapped[str] = mapped_column(String(40), unique=True)
    full_address: Mapped[str] = mapped_column(String(300))

    community: Mapped[OrgUnit] = relationship()


class HouseUse(enum.StrEnum):
    SELF_OCCUPIED = "self_occupied"  # 自住
    RENTED = "rented"  # 出租
    VACANT = "vacant"  # 空置
    BUSINESS = "business"  # 经营


class House(VerifiedMixin, IdMixin, TimestampMixin, Base):
    """实有房屋 — an actual house (a room address, 户室)."""

    __tablename__ = "houses"
    __table_args__ = (UniqueConstraint("floor_id", "room"),)

    community_id: Mapped[int] = community_fk()
    unit_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("building_units.id", ondelete="RESTRICT"), index=True
    )
    floor_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("floors.id", ondelete="RESTRICT"), index=True
    )
    room: Mapped[str] = mapped_column(String(20))
    address_code: Mapped[str] = mapped_column(String(40), unique=True)
    full_address: Mapped[str] = mapped_column(String(300))
    use: Mapped[HouseUse] = mapped_column(enum_column(HouseUse), default=HouseUse.SELF_OCCUPIED)
    owner_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    area: Mapped[float | None] = mapped_column(Float)
    rooms: Mapped[int | None] = mapped_column(Integer)
    plate_installed: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)

    community: Mapped[OrgUnit] = relationship()
    unit: Mapped[BuildingUnit] = relationship()
    floor: Mapped[Floor] = relationship()
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])

    def __str__(self) -> str:
        return self.full_address


# --- people (实有人口) ------------------------------------------------------------------


class IdType(enum.StrEnum):
    RESIDENT_ID = "resident_id"  # 居民身份证
    PASSPORT = "passport"  # 护照
    HK_MACAO = "hk_macao"  # 港澳居民来往内地通行证
    TAIWAN = "taiwan"  # 台湾居民来往大陆通行证
    FOREIGN_PR = "foreign_pr"  # 外国人永久居留身份证
    OTHER = "other"


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class PersonCategory(enum.StrEnum):
    REGISTERED = "registered"  # 户籍人口
    FLOATING = "floating"  # 流动人口
    UNSETTLED = "unsettled"  # 未落户人员
    OVERSEAS = "overseas"  # 境外人员


class Person(VerifiedMixin, IdMixin, TimestampMixin, Base):
    """实有人口 — a person living in or registered with a community.

    The ID number and phone are stored only sealed: ciphertext, keyed lookup hash, mask.
    """

    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("id_number_hash"),)

    community_id: Mapped[int] = community_fk()
    name: Mapped[str] = mapped_column(String(60), index=True)
    id_type: Mapped[IdType] = mapped_column(enum_column(IdType), default=IdType.RESIDENT_ID)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_hash: Mapped[str] = mapped_column(String(64))
    id_number_masked: Mapped[str] = mapped_column(String(40))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[Sex] = mapped_column(enum_column(Sex), default=Sex.UNKNOWN)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    category: Mapped[PersonCategory] = mapped_column(
        enum_column(PersonCategory), default=PersonCategory.REGISTERED
    )
    ethnicity: Mapped[str | None] = mapped_column(String(20))
    household_address: Mapped[str | None] = mapped_column(String(200))
    reason_code: Mapped[str | None] = mapped_column(String(2))
    arrival_date: Mapped[dt.date | None] = mapped_column(Date)
    leaving_date: Mapped[dt.date | None] = mapped_column(Date)
    face_photo: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)

    community: Mapped[OrgUnit] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary="person_tags", order_by="Tag.code")

    def __str__(self) -> str:
        return self.name


class Tag(Base):
    """A person tag (elderly living alone, child, key-person categories …) — data, not code.

    ``police_only`` tags (key-person categories) are hidden from property roles.
    """

    __tablename__ = "tags"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    name_en: Mapped[str] = mapped_column(String(60))
    police_only: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(String(200))

    def __str__(self) -> str:
        return self.name


class PersonTag(Base):
    __tablename__ = "person_tags"

    person_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    tag_code: Mapped[str] = mapped_column(
        String(40), ForeignKey("tags.code", ondelete="RESTRICT"), primary_key=True, index=True
    )


class Relation(enum.StrEnum):
    OWNER = "owner"  # 业主
    FAMILY = "family"  # 家庭成员
    TENANT = "tenant"  # 租户
    CUSTODIAN = "custodian"  # 托管人
    OTHER = "other"


class Residency(IdMixin, TimestampMixin, Base):
    """居住关系 — a person living in a house, from arrival to leaving (人来登记、人走撤销).

    Ending a residency sets ``end_date``; the row stays as history.
    """

    __tablename__ = "residencies"

    community_id: Mapped[int] = community_fk()
    person_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="RESTRICT"), index=True
    )
    house_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("houses.id", ondelete="RESTRICT"), index=True
    )
    relation: Mapped[Relation] = mapped_column(enum_column(Relation))
    start_date: Mapped[dt.date] = mapped_column(Date)
    lease_end: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(200))

    community: Mapped[OrgUnit] = relationship()
    person: Mapped[Person] = relationship()
    house: Mapped[House] = relationship()

    @property
    def active(self) -> bool:
        return self.end_date is None


# --- units, vehicles, forces, incidents --------------------------------------------------


class OrganisationKind(enum.StrEnum):
    SHOP = "shop"  # 商铺
    KINDERGARTEN = "kindergarten"  # 幼儿园
    SCHOOL = "school"  # 学校
    COMPANY = "company"  # 企业
    CLINIC = "clinic"  # 诊所
    PROPERTY = "property"  # 物业公司
    OTHER = "other"


class Organisation(VerifiedMixin, IdMixin, TimestampMixin, Base):
    """实有单位 — a shop, kindergarten or company inside a community."""

    __tablename__ = "organisations"

    community_id: Mapped[int] = community_fk()
    name: Mapped[str] = mapped_column(String(120), index=True)
    kind: Mapped[OrganisationKind] = mapped_column(enum_column(OrganisationKind))
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    legal_representative: Mapped[str | None] = mapped_column(String(60))
    contact_name: Mapped[str | None] = mapped_column(String(60))
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    contact_phone_masked: Mapped[str | None] = mapped_column(String(20))
    house_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("houses.id", ondelete="SET NULL"), index=True
    )
    address: Mapped[str | None] = mapped_column(String(300))
    employees: Mapped[int | None] = mapped_column(Integer)

    community: Mapped[OrgUnit] = relationship()
    house: Mapped[House | None] = relationship()

    def __str__(self) -> str:
        return self.name


class ParkingKind(enum.StrEnum):
    OWNED = "owned"  # 产权车位
    RENTED = "rented"  # 租用车位
    PUBLIC = "public"  # 公共车位
    VISITOR = "visitor"  # 访客车位


class ParkingSpace(IdMixin, TimestampMixin, Base):
    """车位 — a parking space."""

    __tablename__ = "parking_spaces"
    __table_args__ = (UniqueConstraint("community_id", "code"),)

    community_id: Mapped[int] = community_fk()
    code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[ParkingKind] = mapped_column(enum_column(ParkingKind))
    location: Mapped[str | None] = mapped_column(String(120))
    house_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("houses.id", ondelete="SET NULL"), index=True
    )

    community: Mapped[OrgUnit] = relationship()
    house: Mapped[House | None] = relationship()

    def __str__(self) -> str:
        return self.code


class PlateKind(enum.StrEnum):
    ORDINARY = "ordinary"
    NEW_ENERGY = "new_energy"


class Vehicle(IdMixin, TimestampMixin, Base):
    """车辆 — a resident's vehicle, by its normalised plate."""

    __tablename__ = "vehicles"

    community_id: Mapped[int] = community_fk()
    plate: Mapped[str] = mapped_column(String(10), unique=True)
    plate_kind: Mapped[PlateKind] = mapped_column(enum_column(PlateKind))
    colour: Mapped[str | None] = mapped_column(String(20))
    brand: Mapped[str | None] = mapped_column(String(40))
    owner_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    parking_space_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("parking_spaces.id", ondelete="SET NULL"), index=True
    )

    community: Mapped[OrgUnit] = relationship()
    owner: Mapped[Person | None] = relationship()
    parking_space: Mapped[ParkingSpace | None] = relationship()

    def __str__(self) -> str:
        return self.plate


class ForceRole(enum.StrEnum):
    GUARD = "guard"  # 保安
    BUILDING_MANAGER = "building_manager"  # 楼栋长
    CLEANER = "cleaner"  # 保洁
    GRID_WORKER = "grid_worker"  # 网格员
    VOLUNTEER = "volunteer"  # 志愿者


class SecurityStaff(IdMixin, TimestampMixin, Base):
    """安防力量 — guards, building managers, cleaners, grid workers and volunteers."""

    __tablename__ = "security_staff"

    community_id: Mapped[int] = community_fk()
    name: Mapped[str] = mapped_column(String(60))
    role: Mapped[ForceRole] = mapped_column(enum_column(ForceRole))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    employer: Mapped[str | None] = mapped_column(String(120))
    grid_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("grids.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    community: Mapped[OrgUnit] = relationship()
    grid: Mapped[Grid | None] = relationship()

    def __str__(self) -> str:
        return self.name


class IncidentCategory(enum.StrEnum):
    THEFT = "theft"  # 盗窃
    FRAUD = "fraud"  # 诈骗
    DISPUTE = "dispute"  # 纠纷
    FIRE = "fire"  # 火灾
    TRAFFIC = "traffic"  # 交通
    DISTURBANCE = "disturbance"  # 扰民
    ASSISTANCE = "assistance"  # 求助
    OTHER = "other"


class Incident(IdMixin, TimestampMixin, Base):
    """警情事件 — an incident or case, kept for analytics; police-only."""

    __tablename__ = "incidents"

    community_id: Mapped[int] = community_fk()
    occurred_at: Mapped[dt.datetime] = mapped_column(index=True)
    category: Mapped[IncidentCategory] = mapped_column(enum_column(IncidentCategory))
    place: Mapped[str] = mapped_column(String(200))
    house_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("houses.id", ondelete="SET NULL")
    )
    summary: Mapped[str] = mapped_column(Text)
    case_number: Mapped[str | None] = mapped_column(String(40))

    community: Mapped[OrgUnit] = relationship()
    house: Mapped[House | None] = relationship()
