"""HTTP routes: the Connect pages and OAuth callback, the Strava webhook endpoint, the admin API,
health and metrics (an adapter: it parses requests and calls the desk).

May import `service.desk`, `service.core` and `troubleshooting`: nothing else of the service
(pyproject.toml's import-linter contract "Adapters reach the core only through the desk").
"""
