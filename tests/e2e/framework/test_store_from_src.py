"""`kedro run` from the src folder writes into the project's own MLflow store."""

from pathlib import Path

from tests.conftest import kedro


def test_kedro_run_from_src_writes_into_the_projects_own_mlflow_db(project_copy: Path):
    result = kedro(project_copy / "src", "run", "--pipelines=data")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (project_copy / "mlflow.db").is_file()
    assert not (project_copy / "src" / "mlflow.db").exists() and not (project_copy / "src" / "mlruns").exists()
    assert list((project_copy / "mlruns").rglob("normalization_stats.json"))
