"""Where a sandbox keeps its state: a temporary folder, or the folder `--sandbox-dir DIR` names.

A temporary folder (`fitglue-sandbox-*` in the system's temporary directory) holds the process id
of its sandbox (`owner.pid`). It is removed when the sandbox ends, however it ends short of SIGKILL:
normal exit, SIGINT, SIGTERM, a failed start. A folder whose owner process is gone (killed) is
removed by the next sandbox that starts; one without an owner file (being created, or made by an
older version) is left alone. A `--sandbox-dir` folder is never removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.core.settings import ConfigError

log = logging.getLogger("fitglue.sandbox")

PREFIX = "fitglue-sandbox-"
OWNER_FILE = "owner.pid"


@dataclass(frozen=True)
class SandboxFolder:
    path: Path
    temporary: bool

    def file(self, name: str) -> Path:
        return self.path / name


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / OWNER_FILE).read_text().strip())
    except FileNotFoundError:  # being created right now, or not ours to judge
        return True
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_abandoned(temp_root: Path | None = None) -> list[Path]:
    """Remove temporary sandbox folders whose sandbox is gone; returns them."""
    root = Path(temp_root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        try:
            if folder.is_dir() and not folder.is_symlink() and not _owner_alive(folder):
                shutil.rmtree(folder)
                removed.append(folder)
        except OSError as exc:  # another user's folder, or one being removed right now
            log.debug("left %s alone: %s", folder, exc)
    return removed


def _kept_folder(keep_in: str) -> Path:
    """The `--sandbox-dir` folder, created if missing; ConfigError when it cannot be one."""
    if not keep_in.strip():
        raise ConfigError("--sandbox-dir is empty; name a folder for the sandbox's state", ["--sandbox-dir"])
    path = Path(keep_in).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--sandbox-dir {keep_in} cannot be used as a folder ({exc.strerror or exc})",
                          ["--sandbox-dir"]) from None
    return path


@contextmanager
def sandbox_folder(keep_in: str | None) -> Iterator[SandboxFolder]:
    """The folder for this run: ``keep_in`` (created if missing, kept), or a new temporary one that
    is removed when the block ends, whichever way it ends."""
    if keep_in is not None:
        yield SandboxFolder(_kept_folder(keep_in), temporary=False)
        return
    for gone in remove_abandoned():
        log.info("removed %s, left behind by a sandbox that was killed", gone)
    path = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        (path / OWNER_FILE).write_text(f"{os.getpid()}\n")
        yield SandboxFolder(path, temporary=True)
    finally:
        shutil.rmtree(path, ignore_errors=True)
