"""The WebSocket protocol's frames (docs/realtime.md), as msgspec Structs tagged by their `type` field."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec

# Properties one socket may watch, in the handshake's query and in a subscribe message alike.
MAX_PROPERTIES = 100
PropertyIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_PROPERTIES)]


class Window(msgspec.Struct):
    """The local dates `[from, to)` and properties (empty: all of the host's) a socket watches."""

    start: dt.date = msgspec.field(name="from")
    end: dt.date = msgspec.field(name="to")
    property_ids: list[uuid.UUID] = msgspec.field(default_factory=list)


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", forbid_unknown_fields=True):
    """Client -> server: watch another window; answered with a fresh snapshot."""

    start: dt.date = msgspec.field(name="from")
    end: dt.date = msgspec.field(name="to")
    property_ids: PropertyIds = msgspec.field(default_factory=list)

    def window(self) -> Window:
        return Window(self.start, self.end, self.property_ids)


class Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    """Everything up to and including the host's update `seq`; later updates have a greater seq. `metrics` is a
    `HostMetricsOut` encoded once for every socket sharing it (`realtime.figures`)."""

    seq: int
    window: Window
    metrics: msgspec.Raw


class Cause(msgspec.Struct):
    event_type: str
    booking_id: uuid.UUID | None


class Update(msgspec.Struct, tag="update", tag_field="type"):
    """The window's metrics (an encoded `HostMetricsOut`) after the host's update `seq`; `coalesced` earlier
    updates were folded into it."""

    seq: int
    metrics: msgspec.Raw
    cause: Cause
    coalesced: int = 0


class Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="type"):
    pass


class Error(msgspec.Struct, tag="error", tag_field="type"):
    """A client message the server could not act on; the connection stays open and the window unchanged."""

    detail: str


ServerMessage = Snapshot | Update | Heartbeat | Error

encoder = msgspec.json.Encoder()
client_decoder = msgspec.json.Decoder(Subscribe)
