"""The files `--sandbox-dir DIR` keeps between runs hold the sandbox's secrets (the secret key, the
admin token): only their owner may read them, even when an earlier file was readable by others."""

from __future__ import annotations

import stat

from service.app.sandbox.folder import SandboxFolder
from service.app.sandbox.sandbox_settings import EXPORT_FILE, SECRETS_FILE, SandboxSecrets, write_export_file
from tests.conftest import make_settings


def test_kept_secrets_and_export_files_become_owner_only(tmp_path):
    folder = SandboxFolder(tmp_path, temporary=False)
    secrets_file, export_file = folder.file(SECRETS_FILE), folder.file(EXPORT_FILE)
    secrets_file.write_text("{}")
    export_file.write_text("# an older sandbox's line\n")
    for path in (secrets_file, export_file):
        path.chmod(0o644)  # e.g. copied in, or made by an older version
    SandboxSecrets.for_folder(folder)
    write_export_file(folder, make_settings("sqlite+aiosqlite:///x.db", None))
    for path in (secrets_file, export_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
