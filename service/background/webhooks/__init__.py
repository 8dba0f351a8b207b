"""Strava's push subscription: intake of webhook events, their processing in the queue, catch-up
of missed activities, and the subscription's registration and repair."""
