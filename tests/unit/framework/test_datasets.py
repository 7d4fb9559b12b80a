"""The project's own Kedro datasets: image arrays (.npz) and model files (.pt)."""

import numpy as np
import pytest
import torch
from kedro.io import DatasetError

from classwise.framework.datasets import LabelledImagesDataset, TorchModelDataset
from classwise.models import build_model


def test_images_round_trip_keeps_pixels_labels_names_and_ids(tmp_path, small_images):
    small_images.class_names[0] = "chaise longue é"  # unicode and spaces survive
    ds = LabelledImagesDataset(filepath=str(tmp_path / "sub" / "dataset.npz"))
    assert not ds.exists()
    ds.save(small_images)
    back = ds.load()
    assert np.array_equal(back.images, small_images.images) and np.array_equal(back.labels, small_images.labels)
    assert back.class_names == small_images.class_names and back.ids == small_images.ids
    assert not list((tmp_path / "sub").glob("*.tmp*"))  # written through a temporary file, then renamed


def test_model_round_trip_rebuilds_the_same_network(tmp_path):
    net = build_model("preact_resnet18", 3, width=4)
    ds = TorchModelDataset(filepath=str(tmp_path / "model.pt"))
    ds.save({"config": {"name": "preact_resnet18", "num_classes": 3, "options": {"width": 4}},
             "state_dict": net.state_dict()})
    blob = ds.load()
    again = build_model(blob["config"]["name"], blob["config"]["num_classes"], **blob["config"]["options"])
    again.load_state_dict(blob["state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_a_garbage_model_file_fails_with_one_sentence_naming_it(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(DatasetError, match=r"Cannot load model weights from '.*model\.pt'.*retrain"):
        TorchModelDataset(filepath=str(path)).load()


def test_a_torch_file_without_config_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(DatasetError, match="is not a Classwise model file"):
        TorchModelDataset(filepath=str(path)).load()


def test_a_pickled_module_is_refused_not_executed(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("preact_resnet18", 3, width=4), path)  # a whole module, not weights
    with pytest.raises(DatasetError, match="Cannot load model weights"):
        TorchModelDataset(filepath=str(path)).load()


def test_random_bytes_as_the_dataset_file_is_one_clear_sentence(tmp_path):
    path = tmp_path / "dataset.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DatasetError, match=r"Cannot read the dataset file .* rerun 'kedro run --pipelines=data'") as info:
        LabelledImagesDataset(filepath=str(path)).load()
    assert "pickle" not in str(info.value) and "\n" not in str(info.value)


def test_an_npz_without_the_dataset_arrays_is_named(tmp_path):
    path = tmp_path / "dataset.npz"
    np.savez(path, images=np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(DatasetError, match="lacks labels, class_names, ids"):
        LabelledImagesDataset(filepath=str(path)).load()


def test_a_model_without_weights_never_replaces_the_saved_one(tmp_path):
    path = tmp_path / "model.pt"
    ds = TorchModelDataset(filepath=str(path))
    ds.save({"config": {"name": "preact_resnet18"}, "state_dict": {"w": torch.ones(1)}})
    before = path.read_bytes()
    with pytest.raises(DatasetError, match="Refusing to overwrite .* no weights"):
        ds.save({"config": {"name": "preact_resnet18"}, "state_dict": {}})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
