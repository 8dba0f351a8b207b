"""SupportDesk: the one operations API that the Slack bot, the CLI and the admin API share
(diagnose, Connect links, refresh, disconnect, forget, push subscription, rate limits, jobs, audit).

May import `service.connections`, `service.ratelimit`, `service.strava`, `service.background`
(for the subscription and queue operations), `service.core`, `service.db` and `troubleshooting`.
"""
