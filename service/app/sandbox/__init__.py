"""`fitglue serve --sandbox`: the service beside local stand-ins for Strava and Slack, on loopback.

Its state lives in a folder (`folder.py`): a temporary one, removed on exit, on a signal and after a
failed start (and, if a killed sandbox left one, at the next start), or `--sandbox-dir DIR`, kept
between runs. `sandbox_settings.py` decides the settings (throw-away or kept secrets, the stand-ins'
URLs, a generated admin token) and writes the `export` line that points the CLI at the running
sandbox; `session.py` starts and stops the stand-ins; `front_page.py` is what the banner and the
index page at `/` show. Part of `service.app`: it may import every part below it, and the stand-ins.
"""
