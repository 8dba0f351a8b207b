"""HTTP routes: the Connect pages and OAuth callback, the Strava webhook endpoint, the admin API,
health and metrics (an adapter: it parses requests and calls the desk).

May import `service.desk`, `service.core` and `troubleshooting` (and, until they move behind the
desk, the few imports listed in pyproject.toml's import-linter contract).
"""
