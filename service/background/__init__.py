"""Background work: the scheduler (refresh sweep, retention, alert checks), the persisted retry
queue and its worker, webhook intake and processing, catch-up and the push subscription.

May import `service.desk`, `service.connections`, `service.ratelimit`, `service.strava`,
`service.core`, `service.db` and `troubleshooting`; never `service.web`, `service.app` or `bot`.
"""
