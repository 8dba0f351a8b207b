"""The app's one Strava push subscription: what we remember of it (its id, the events it delivered
and their states), and its registration, status and repair (Strava's documentation: one
subscription per application, validated by a GET echoing `hub.challenge`).

May import `service.queue`, `service.strava`, `service.core`, `service.db`.
"""
