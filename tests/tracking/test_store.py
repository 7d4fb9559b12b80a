"""The SQLite tracking store: resolved against the project root, refused in one sentence when unusable."""

import os
import sqlite3
from pathlib import Path

import pytest

from classwise.core.errors import RunError
from classwise.framework.project_paths import resolve_params
from classwise.framework.store import check_sqlite_store, resolve_tracking_uri
from tests.conftest import kedro


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


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files, so read-only cannot be shown as root")
def test_a_read_only_store_is_one_sentence(tmp_path):
    db = tmp_path / "mlflow.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    db.chmod(0o444)
    with pytest.raises(RunError, match="is read-only"):
        check_sqlite_store(f"sqlite:///{db}")


def test_kedro_run_from_src_writes_into_the_projects_own_mlflow_db(project_copy: Path):
    result = kedro(project_copy / "src", "run", "--pipelines=data")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (project_copy / "mlflow.db").is_file()
    assert not (project_copy / "src" / "mlflow.db").exists() and not (project_copy / "src" / "mlruns").exists()
    assert list((project_copy / "mlruns").rglob("normalization_stats.json"))
