"""The words of the outbound-event contract (README "Outbound events"; DESIGN.md part 2): event types
and delivery states. Receivers branch on the types, so they never change."""

from __future__ import annotations

CONNECTED = "strava.connection.connected"  # a connect, including a reconnect
PERMISSIONS_CHANGED = "strava.connection.permissions_changed"  # a new grant differs from the previous one
NEEDS_REAUTH = "strava.connection.needs_reauth"  # our refresh found the grant dead
REVOKED = "strava.connection.revoked"  # Strava's deauthorization, confirmed
DISCONNECTED = "strava.connection.disconnected"  # by an operator or the user
RECOVERED = "strava.connection.recovered"  # refreshes were failing and now succeed
ACTIVITY_CREATED = "strava.activity.created"  # after the activity was fetched from Strava
ACTIVITY_UPDATED = "strava.activity.updated"  # after it was fetched again (only Strava's answer)
ACTIVITY_DELETED = "strava.activity.deleted"  # only once Strava confirmed it (404 to the owner)
USER_ERASED = "fitglue.user.erased"  # after `forget`; carries the anonymous label, no e-mail

EVENT_TYPES = (CONNECTED, PERMISSIONS_CHANGED, NEEDS_REAUTH, REVOKED, DISCONNECTED, RECOVERED,
               ACTIVITY_CREATED, ACTIVITY_UPDATED, ACTIVITY_DELETED, USER_ERASED)

# Still sent after the user's data is erased, reduced to the athlete id (and the label).
SENT_AFTER_ERASURE = (REVOKED, USER_ERASED)

# Delivery states (outbound_events.state), as `fitglue events --state` names them.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)
