"""HTTP routes: Connect pages and OAuth callback, webhooks, admin API, health."""
