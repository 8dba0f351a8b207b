"""The outbox of events for FitGlue's other services (`outbound_events`): writing an event in the
caller's transaction, so a state change and the event describing it commit together; claiming and
settling deliveries; listing, retrying, replaying and erasing events. Sending them over HTTP is
`service.background.outbound`'s.

May import `service.core` and `service.db`.
"""

from service.outbox.event_types import (
    ACTIVITY_CREATED,
    ACTIVITY_DELETED,
    ACTIVITY_UPDATED,
    CONNECTED,
    DELIVERED,
    DISCONNECTED,
    EVENT_TYPES,
    FAILED,
    NEEDS_REAUTH,
    PENDING,
    PERMISSIONS_CHANGED,
    RECOVERED,
    REVOKED,
    STATES,
    USER_ERASED,
)
from service.outbox.writing import (
    activity_summary,
    announce_erasure,
    connection_data,
    erase_outbox,
    write_event,
)

__all__ = [
    "ACTIVITY_CREATED",
    "ACTIVITY_DELETED",
    "ACTIVITY_UPDATED",
    "CONNECTED",
    "DELIVERED",
    "DISCONNECTED",
    "EVENT_TYPES",
    "FAILED",
    "NEEDS_REAUTH",
    "PENDING",
    "PERMISSIONS_CHANGED",
    "RECOVERED",
    "REVOKED",
    "STATES",
    "USER_ERASED",
    "activity_summary",
    "announce_erasure",
    "connection_data",
    "erase_outbox",
    "write_event",
]
