"""The SQLite tracking store: resolved against the project root, refused in one sentence when unusable."""

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from classwise.core.errors import RunError
from classwise.framework.project_paths import resolve_params
from classwise.framework.store import check_sqlite_store, resolve_tracking_uri


def test_relative_sqlite_uri_resolves_under_the_project_and_others_stay():
    assert resolve_tracking_uri("sqlite:///mlflow.db", "/p/q") == "sqlite:////p/q/mlflow.db"
    assert resolve_tracking_uri("sqlite:////abs/m.db", "/p") == "sqlite:////abs/m.db"
    assert resolve_tracking_uri("http://127.0.0.1:5000", "/p") == "http://127.0.0.1:5000"


def test_relative_checkpoint_dir_resolves_under_the_project():
    params = {"checkpoint_dir": "data/06_models/checkpoints", "epochs": 3}
    assert resolve_params(params, ("checkpoint_dir",), Path("/p")) == {
        "checkpoint_dir": "/p/data/06_models/checkpoints", "epochs": 3}
    assert resolve_params({"checkpoint_dir": None}, ("checkpoint_dir",), Path("/p")) is None
    assert resolve_params({"checkpoint_dir": "/abs"}, ("checkpoint_dir",), Path("/p")) is None


def test_a_locked_store_is_one_sentence(tmp_path):
    db = tmp_path / "mlflow.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RunError, match=r"mlflow.db' stayed locked by another process for 0.2 s; close"):
            check_sqlite_store(f"sqlite:///{db}", lock_wait_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    check_sqlite_store(f"sqlite:///{db}", lock_wait_s=0.2)  # free again


def test_a_file_that_is_not_sqlite_is_one_sentence(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a database at all" * 100)
    with pytest.raises(RunError, match="is not an SQLite database"):
        check_sqlite_store(f"sqlite:///{db}")


NOBODY = 65534  # the unprivileged user and group of Linux systems


def _store_check_without_root(uri: str) -> str:
    """``check_sqlite_store(uri)`` as a user without root's right to write any file: in this process when it
    is not root, else in a forked child that has become 'nobody'. What it raised, as text ('' for nothing)."""
    def outcome() -> str:
        try:
            check_sqlite_store(uri)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    if os.geteuid() != 0:
        return outcome()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: reports through the pipe and never returns into pytest
        try:
            os.close(read)
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                text = outcome()
            except Exception as exc:
                text = f"the child could not become 'nobody': {type(exc).__name__}: {exc}"
            os.write(write, text.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return text


@pytest.fixture
def shared_folder(tmp_path):
    """A folder the checking user may enter and write: pytest's own is root's alone (0700) when run as root."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="classwise-store-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_a_read_only_store_is_one_sentence(shared_folder):
    """Root writes read-only files, so as root (this machine, CI) the check runs as 'nobody' instead of skipping."""
    db = shared_folder / "mlflow.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    db.chmod(0o666)
    assert _store_check_without_root(f"sqlite:///{db}") == ""  # writable: passes, so the refusal below is the mode's
    db.chmod(0o444)
    refused = _store_check_without_root(f"sqlite:///{db}")
    assert refused.startswith("RunError: ") and "is read-only" in refused and "\n" not in refused, refused
