"""The local SQLite tracking store: its path against the project root, and a check before a run.

MLflow reads ``sqlite:///mlflow.db`` against the working directory, so a run
started from a sub-folder would open a second, empty history there; and a
read-only or locked database only shows as hundreds of lines of SQLAlchemy.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from classwise.core.errors import RunError

SQLITE = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores and in-memory SQLite)."""
    if not uri.startswith(SQLITE):
        return None
    path = uri[len(SQLITE):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def resolve_tracking_uri(uri: str, project_path: str | os.PathLike) -> str:
    """``sqlite:///relative.db`` as an absolute URI under ``project_path``; any other URI unchanged."""
    path = sqlite_path(uri)
    if path is None or path.is_absolute():
        return uri
    return SQLITE + (Path(project_path) / uri[len(SQLITE):]).as_posix()


def check_sqlite_store(uri: str, lock_wait_s: float = 20.0) -> None:
    """Refuse, in one sentence, a SQLite store this process cannot write (read-only, locked, not SQLite)."""
    path = sqlite_path(uri)
    if path is None:
        return
    folder = path.parent
    fix = "or point server.mlflow_tracking_uri in conf/base/mlflow.yml (or conf/local/mlflow.yml) at another file"
    if not path.exists():
        if folder.is_dir() and not os.access(folder, os.W_OK):
            raise RunError(f"The MLflow store '{path}' cannot be created: its folder is read-only; "
                            f"make '{folder}' writable {fix}.")
        return
    if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
        raise RunError(f"The MLflow store '{path}' is read-only (SQLite needs to write the file and its "
                        f"folder); make both writable {fix}.")
    try:
        with sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=lock_wait_s) as con:
            con.execute("BEGIN IMMEDIATE")  # takes the write lock, as MLflow will
            con.rollback()
        con.close()
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise RunError(f"The MLflow store '{path}' stayed locked by another process for {lock_wait_s:g} s; "
                            f"close the program holding it (an open sqlite3 shell, a stuck run) {fix}.") from exc
        raise RunError(f"The MLflow store '{path}' cannot be written ({text}); check its permissions "
                        f"{fix}.") from exc
    except sqlite3.DatabaseError as exc:
        raise RunError(f"'{path}' is not an SQLite database ({exc}), so MLflow cannot use it; move it away "
                        f"{fix}.") from exc
