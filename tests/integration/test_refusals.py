"""Every refusal before the first node, walked in process: `kedro run` prints one sentence, exits 2,
runs nothing and opens no MLflow run (docs/troubleshooting.md lists them)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from tests.support.sessions import mlflow_state_restored

REFUSALS = [
    (["--params=trian.epochs=3"], "Unknown parameter block 'trian' (from conf/*/parameters*.yml or --params); "
                                  "the blocks are: ablation, data, diagnose, evaluate, normalization, predict, split, "
                                  "train."),
    (["--params=train.modle=x"], "Unknown parameter 'train.modle'; known keys of 'train' are:"),
    (["--params=train.lr=fast"], "Parameter 'train.lr' must be float, got 'fast'"),
    (["--params=train.epochs=0"], "Parameter 'train.epochs' is 0; it must be 1 or more."),
    (["--params=train.batch_size=1"], "Parameter 'train.batch_size' is 1; it must be 2 or more"),
    (["--params=train.model=resnet19"], "Parameter 'train.model' is 'resnet19', which is not a known model"),
    (["--params=train.model=densenet_bc_100"],
     "Parameter 'train.model_options' has 'width', which model 'densenet_bc_100' does not take"),
    (["--params=train.loss=ldam,train.cutmix_p=0.5"], "Parameter 'train.loss' is 'ldam', whose margin belongs"),
    (["--params=evaluate.f1_treshold=0.3"], "Unknown parameter 'evaluate.f1_treshold'"),
    (["--params=diagnose.recipe.epochs=0"], "Parameter 'diagnose.recipe.epochs' is 0; it must be 1 or more."),
    (["--params=diagnose.folds=1"], "Parameter 'diagnose.folds' is 1; out-of-fold prediction needs at least 2"),
    (["--params=data.source=nope"], "Unknown data source 'nope' in parameter 'data.source'"),
    (["--pipelines=evaluat"], "Unknown pipeline 'evaluat'; the pipelines are: data, diagnose, evaluate, predict, train"),
    (["--pipelines=evaluate"], "This run reads the saved dataset"),
    (["--pipelines=diagnose"], "This run reads the saved dataset 'dataset' (and 'duplicate_images'"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from tests.conftest import copy_project

    return copy_project(tmp_path_factory.mktemp("refusals") / "project")


@pytest.mark.parametrize("args, sentence", REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_a_refusal_is_one_sentence_and_runs_nothing(project, args, sentence, monkeypatch):
    from classwise.cli import cli

    monkeypatch.chdir(project)
    monkeypatch.delenv("CLASSWISE_VERBOSE", raising=False)
    with mlflow_state_restored():
        result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"Error: {sentence}"), result.output
    assert not (project / "data" / "02_intermediate" / "dataset.npz").exists()  # nothing ran
    if (project / "mlflow.db").exists():
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("classwise")
        assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_verbose_shows_the_traceback_instead(project, monkeypatch):
    from classwise.cli import cli

    monkeypatch.chdir(project)
    with mlflow_state_restored():
        result = CliRunner().invoke(cli, ["run", "--verbose", "--params=train.epochs=0"])
    assert result.exit_code != 0 and type(result.exception).__name__ == "ConfigError"
    assert os.environ.get("CLASSWISE_VERBOSE") is None


def test_a_refused_run_leaves_the_saved_model_byte_for_byte(project, monkeypatch):
    import torch

    from classwise.cli import cli

    model_file = project / "data" / "06_models" / "model.pt"
    model_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": {"name": "earlier"}, "state_dict": {"w": torch.ones(2)}}, model_file)
    before = model_file.read_bytes()
    monkeypatch.chdir(project)
    with mlflow_state_restored():
        result = CliRunner().invoke(cli, ["run", "--pipelines=train", "--params=train.epochs=0"])
    assert result.exit_code == 2 and "Error: Parameter 'train.epochs' is 0" in result.output
    assert model_file.read_bytes() == before
    model_file.unlink()
