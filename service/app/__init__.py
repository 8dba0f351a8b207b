"""The top: builds and starts everything (the aiohttp application factory, the wiring of optional
parts such as the Slack bot, the `fitglue` command line).

May import every other part of `service`, `bot` (only `service.app.wiring` does) and
`troubleshooting`. Holds no business logic: it parses, calls the desk or starts loops, and prints.
"""
