"""One user's Strava connection: the Connect flow (links, OAuth callback, stored grant), tokens,
refresh (also on demand for the access-token endpoint: token_access), users, erasure and the audit log.

May import `service.strava`, `service.ratelimit`, `service.core`, `service.db` and `troubleshooting`.
"""
