"""Device records: what a device is and where it stands. Events come in a later slice."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from anju.core.db import Base, BigId, IdMixin, TimestampMixin
from anju.org.models import OrgUnit, enum_column
from anju.registry.models import Building, BuildingUnit, community_fk


class DeviceKind(enum.StrEnum):
    """Kinds of device a community has (the three rings: perimeter, inside, building)."""

    FACE_GATE = "face_gate"  # 人脸门禁/闸机
    CARD_READER = "card_reader"  # 刷卡门禁
    UNIT_DOOR = "unit_door"  # 单元门禁
    BARRIER = "barrier"  # 车辆道闸(车牌识别)
    FACE_CAMERA = "face_camera"  # 人脸抓拍机
    VEHICLE_CAMERA = "vehicle_camera"  # 车辆抓拍机
    VIDEO_CAMERA = "video_camera"  # 视频监控
    PERIMETER = "perimeter"  # 周界报警
    SOS_BUTTON = "sos_button"  # 紧急求助按钮
    SMOKE_DETECTOR = "smoke_detector"  # 烟感
    DOOR_MAGNET = "door_magnet"  # 门磁
    INFRARED = "infrared"  # 红外
    WATER_METER = "water_meter"  # 水表
    ELECTRICITY_METER = "electricity_meter"  # 电表
    GAS_METER = "gas_meter"  # 燃气表
    SMART_LOCK = "smart_lock"  # 智能门锁
    MANHOLE = "manhole"  # 井盖
    HYDRANT = "hydrant"  # 消防栓水压
    FIRE_LANE = "fire_lane"  # 消防通道
    WIFI_PROBE = "wifi_probe"  # WiFi 探针
    RFID_READER = "rfid_reader"  # RFID 读卡
    EBIKE_DETECTOR = "ebike_detector"  # 电动车识别
    THROW_CAMERA = "throw_camera"  # 高空抛物
    PATROL_POINT = "patrol_point"  # 巡更点
    OTHER = "other"


class DeviceStatus(enum.StrEnum):
    ACTIVE = "active"  # 在用
    MAINTENANCE = "maintenance"  # 维修
    INACTIVE = "inactive"  # 停用
    RETIRED = "retired"  # 报废


class Device(IdMixin, TimestampMixin, Base):
    """安防设施 — a device installed in a community, with its place."""

    __tablename__ = "devices"

    community_id: Mapped[int] = community_fk()
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[DeviceKind] = mapped_column(enum_column(DeviceKind))
    vendor: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(String(60))
    building_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("buildings.id", ondelete="SET NULL"), index=True
    )
    unit_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("building_units.id", ondelete="SET NULL"), index=True
    )
    door: Mapped[str | None] = mapped_column(String(60))
    floor: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[DeviceStatus] = mapped_column(
        enum_column(DeviceStatus), default=DeviceStatus.ACTIVE
    )
    installed_on: Mapped[dt.date | None] = mapped_column()
    # The house a per-house device serves (smart lock, meter, door magnet). Checked by the
    # service on write; no database FK so the column could be added without rebuilding the
    # table on SQLite (a rebuild would cascade into device credentials).
    house_id: Mapped[int | None] = mapped_column(BigId, index=True)
    # The device's id on a carrier platform (CTWing deviceId / IMEI, OneNET dev_id).
    external_id: Mapped[str | None] = mapped_column(
        String(64), unique=True, index=True, default=None
    )
    # Health, kept up to date by the event pipeline.
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    battery: Mapped[float | None] = mapped_column(Float, default=None)
    signal: Mapped[float | None] = mapped_column(Float, default=None)
    events_accepted: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    events_rejected: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_rejection: Mapped[str | None] = mapped_column(String(300), default=None)
    last_rejected_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Set by the health tick when the device went silent (the moment it passed twice its
    # interval), cleared when it is heard again: the tick raises device.offline/online once.
    offline_since: Mapped[dt.datetime | None] = mapped_column(default=None)

    community: Mapped[OrgUnit] = relationship()
    building: Mapped[Building | None] = relationship()
    unit: Mapped[BuildingUnit | None] = relationship()

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
