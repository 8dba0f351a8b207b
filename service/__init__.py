"""FitGlue's Strava side: Connect links, OAuth, token refresh, webhooks, and the support desk."""
