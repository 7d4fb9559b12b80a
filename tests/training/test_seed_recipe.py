"""`--env seed` holds the seed's final recipe, and it parses into the loop's configuration."""

from pathlib import Path

from kedro.config import OmegaConfigLoader

from classwise.config import parse
from classwise.training import TrainConfig

CONF = Path(__file__).resolve().parents[2] / "conf"


def _params(env: str) -> dict:
    return OmegaConfigLoader(str(CONF), base_env="base", default_run_env=env)["parameters"]


def test_seed_env_is_the_seeds_final_recipe():
    params = _params("seed")
    cfg = parse(TrainConfig, params["train"], "train")
    assert cfg.model == "preact_se_wrn_28_10" and cfg.model_options == {}
    assert (cfg.epochs, cfg.lr, cfg.momentum, cfg.milestones, cfg.gamma, cfg.batch_size) == (
        120, 0.1, 0.9, [60, 90], 0.1, 128)
    assert (cfg.label_smoothing, cfg.oversample, cfg.cutmix_p, cfg.cutmix_alpha, cfg.augment) == (
        0.1, True, 0.5, 1.0, "crop_flip")
    assert cfg.checkpoint_dir == "data/06_models/checkpoints" and cfg.resume
    assert params["data"] == {"source": "image_folder", "root": "data/01_raw/images"}
    assert params["normalization"] == {"mode": "fixed", "mean": 0.49, "std": 0.25}


def test_base_train_block_parses_and_checkpoints_under_06_models():
    cfg = parse(TrainConfig, _params("local")["train"], "train")
    assert cfg.checkpoint_dir.startswith("data/06_models/") and cfg.cutmix_p == 0 and not cfg.oversample
