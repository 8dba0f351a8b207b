"""SupportDesk: the one operations API that the Slack bot, the CLI and the admin API share
(diagnose, Connect links, refresh, disconnect, forget, push subscription, rate limits, jobs, audit).

Also the adapters' other doors: the Connect pages' operations (`connect_ops`), the webhook
intake's port (`webhook_intake`, implemented in `service.background`), readiness and queue figures
(`vitals`), the access-token endpoint's operation (`token_desk`). Every failure the caller must hear is a `SupportError` (`error_table`: one row per code,
with its HTTP status, exit status and wording; `boundary`: the translation at the desk's edge).

May import `service.connections`, `service.subscription`, `service.queue`, `service.ratelimit`,
`service.strava`, `service.core`, `service.db` and `troubleshooting`; never `service.background`,
`service.web`, `service.app` or `bot` (they sit above it).
"""
