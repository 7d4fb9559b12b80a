import numpy as np
import pytest
import torch

from classwise.core.errors import RunError
from classwise.models import available_models, build_model
from classwise.data.split import SplitConfig, split_table, subset_index
from classwise.training import TrainConfig, TrainStep, fit, lr_at, predict_proba, resolve_device
from tests.conftest import make_images


def _tiny(**kw):
    base = dict(model="preact_resnet18", model_options={"width": 4}, epochs=2, batch_size=16,
                lr=0.05, milestones=[1], augment="crop_flip", device="cpu", progress=False,
                weight_decay=0.0, label_smoothing=0.0, oversample=False, cutmix_p=0.0)
    return TrainConfig(**{**base, **kw})


def _data():
    data = make_images([30, 30, 30], size=16)
    split = split_table(data, SplitConfig(val_per_class=5, test_per_class=5))
    tr, va = subset_index(data, split, "train"), subset_index(data, split, "val")
    return data, tr, va


def test_one_cycle_moves_the_optimizer_lr_every_step():
    data, tr, va = _data()
    cfg = _tiny(schedule="one_cycle", milestones=[], lr=0.1)
    seen_lrs = []
    original = TrainStep.__call__

    def spy(self, xb, target):
        seen_lrs.append(self.optimizer.param_groups[0]["lr"])
        return original(self, xb, target)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TrainStep, "__call__", spy)
        result = fit(data.images[tr], data.labels[tr], data.images[va], data.labels[va], 3, [0.5] * 3, [0.25] * 3,
                     cfg)
    per_epoch = len(seen_lrs) // 2
    assert seen_lrs == pytest.approx([lr_at(cfg, e, i, per_epoch) for e in range(2) for i in range(per_epoch)])
    assert seen_lrs[0] == pytest.approx(0.01) and len(set(seen_lrs)) == len(seen_lrs)
    assert [row["lr"] for row in result.history] == pytest.approx([seen_lrs[0], seen_lrs[per_epoch]])


def test_fit_records_one_history_row_an_epoch_and_returns_loadable_weights():
    data, tr, va = _data()
    seen = []
    result = fit(data.images[tr], data.labels[tr], data.images[va], data.labels[va], 3,
                 [0.5] * 3, [0.25] * 3, _tiny(), on_epoch_end=seen.append)
    assert [r["epoch"] for r in result.history] == [1, 2] and seen == result.history
    assert result.history[0]["lr"] == pytest.approx(0.05) and result.history[1]["lr"] == pytest.approx(0.005)
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s"} <= set(seen[0])
    model = build_model(**{"name": "preact_resnet18", "num_classes": 3}, width=4)
    model.load_state_dict(result.best_state)
    probs = predict_proba(model, data.images[va], [0.5] * 3, [0.25] * 3, device="cpu")
    assert probs.shape == (len(va), 3)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_same_seed_same_weights_on_cpu():
    data, tr, va = _data()
    args = (data.images[tr], data.labels[tr], data.images[va], data.labels[va], 3, [0.5] * 3, [0.25] * 3)
    a = fit(*args, _tiny(epochs=1))
    b = fit(*args, _tiny(epochs=1))
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)


def test_nan_loss_stops_with_a_clear_sentence():
    data, tr, va = _data()
    with pytest.raises(RunError, match="lower train.lr"):
        fit(data.images[tr], data.labels[tr], data.images[va], data.labels[va], 3,
            [0.5] * 3, [0.25] * 3, _tiny(epochs=1, lr=1e30))


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown model 'vgg'.*preact_resnet18"):
        build_model("vgg", 10)
    assert "preact_resnet18" in available_models()


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
        resolve_device("cuda")


def test_without_validation_images_the_last_epoch_is_kept():
    data, tr, _ = _data()
    none = np.zeros(0, dtype=np.int64)
    result = fit(data.images[tr], data.labels[tr], data.images[none], data.labels[none], 3,
                 [0.5] * 3, [0.25] * 3, _tiny(epochs=2))
    assert result.best_epoch == 2
    assert all(np.isnan(row["val_accuracy"]) and np.isnan(row["val_loss"]) for row in result.history)
