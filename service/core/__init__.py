"""The bottom that everything stands on: settings, the injectable clock, the runtime (shared
resources), logging, secrets (encryption, signing, redaction), strict parsing of outside input,
metrics and the status vocabulary.

Imports nothing of ours but `service.db` and `troubleshooting` (the runtime refers to the Strava
client and the rate-limit ledger for typing only).
"""
