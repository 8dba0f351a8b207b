"""FitGlue's Strava side: Connect links, OAuth, token refresh, webhooks, and the support desk.

ARCHITECTURE.md is the map: `app` at the top, then `web`, `background` (and the Slack `bot`), then
`desk`, then `connections`, `subscription`, `queue`, `ratelimit` and `strava`, then `core` and `db`.
"""
