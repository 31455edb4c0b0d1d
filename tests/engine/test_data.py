"""Training data stream: image format, horizontal flip of image/boxes/masks, seeded order,
resumable state, image files that are missing or not images."""

import numpy as np
import pytest

from mrcnn_np.engine.data import BatchLoader, hflip, read_image_file, sample_to_input, to_model_image


class _Toy:
    """A data set of n 4x6 images whose pixel (0, 0) holds the index."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image = np.zeros((4, 6, 3), np.uint8)
        image[0, 0] = i
        masks = np.zeros((1, 4, 6), np.uint8)
        masks[0, 1:3, 0:2] = 1
        return {"image": image, "boxes": np.array([[0, 1, 2, 3]], np.float32), "labels": np.array([1]),
                "masks": masks, "image_id": i + 1}


def test_to_model_image():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    out = to_model_image(img)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 0, 2], img[0, 2, 1] / 255, rtol=1e-6)
    assert 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="image must have shape"):
        to_model_image(np.zeros((4, 4)))


def test_hflip_moves_boxes_with_masks():
    image, target = sample_to_input(_Toy(1)[0])
    f_img, f_t = hflip(image, target)
    # the mask covers columns [0, 2): after flipping a 6-wide image, columns [4, 6)
    np.testing.assert_array_equal(f_t["boxes"], [[4, 1, 6, 3]])
    cols = np.nonzero(f_t["masks"][0].any(0))[0]
    assert cols.min() == f_t["boxes"][0, 0] and cols.max() + 1 == f_t["boxes"][0, 2]
    np.testing.assert_array_equal(f_img, image[..., ::-1])
    # flipping twice is the identity; the input is not modified
    b_img, b_t = hflip(f_img, f_t)
    np.testing.assert_array_equal(b_img, image)
    np.testing.assert_array_equal(b_t["boxes"], target["boxes"])
    np.testing.assert_array_equal(b_t["masks"], target["masks"])
    np.testing.assert_array_equal(target["boxes"], [[0, 1, 2, 3]])


def test_hflip_no_objects():
    image = np.zeros((3, 5, 7), np.float32)
    target = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
              "masks": np.zeros((0, 5, 7), np.uint8)}
    f_img, f_t = hflip(image, target)
    assert f_t["boxes"].shape == (0, 4) and f_t["masks"].shape == (0, 5, 7)


def _indices(loader, n_batches):
    return [loader.next_batch()[2] for _ in range(n_batches)]


def test_loader_visits_every_image_once_per_epoch_and_is_seeded():
    ds = _Toy(5)
    a = BatchLoader(ds, 2, np.random.default_rng(0))
    seen = sum(_indices(a, 5), [])  # 10 images = 2 epochs
    assert sorted(seen[:5]) == list(range(5)) and sorted(seen[5:]) == list(range(5))
    assert seen[:5] != seen[5:] or seen[:5] != list(range(5))  # shuffled (not the identity twice)
    b = BatchLoader(ds, 2, np.random.default_rng(0))
    assert sum(_indices(b, 5), []) == seen
    c = BatchLoader(ds, 2, np.random.default_rng(1))
    assert sum(_indices(c, 5), []) != seen


def test_loader_flips_about_half_and_consistently():
    loader = BatchLoader(_Toy(4), 4, np.random.default_rng(0), flip_prob=0.5)
    flipped = 0
    for _ in range(25):
        images, targets, idx = loader.next_batch()
        for img, t, i in zip(images, targets, idx):
            is_flipped = t["boxes"][0, 0] == 4
            # the index pixel moves to the last column when flipped
            assert img[0, 0, -1 if is_flipped else 0] == pytest.approx(i / 255)
            flipped += is_flipped
    assert 30 < flipped < 70
    never = BatchLoader(_Toy(4), 4, np.random.default_rng(0), flip_prob=0.0)
    assert all(t["boxes"][0, 0] == 0 for t in never.next_batch()[1])


def test_loader_state_round_trip_mid_epoch():
    ds = _Toy(5)
    a = BatchLoader(ds, 2, np.random.default_rng(3))
    _indices(a, 3)  # 6 images: one epoch and one image into the next
    state = a.state()
    import json
    state = json.loads(json.dumps(state))  # the state must survive JSON
    expected = [a.next_batch() for _ in range(4)]
    b = BatchLoader(ds, 2, np.random.default_rng(99))
    b.load_state(state)
    for (ei, et, eidx), _ in zip(expected, range(4)):
        gi, gt, gidx = b.next_batch()
        assert gidx == eidx
        for x, y in zip(ei, gi):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(et, gt):
            np.testing.assert_array_equal(x["boxes"], y["boxes"])
    with pytest.raises(ValueError, match="data set of 5 images"):
        BatchLoader(_Toy(7), 2, np.random.default_rng(0)).load_state(state)


def test_loader_bad_arguments():
    with pytest.raises(ValueError, match="no images"):
        BatchLoader(_Toy(0), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(_Toy(3), 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="flip_prob"):
        BatchLoader(_Toy(3), 1, np.random.default_rng(0), flip_prob=1.5)


def test_read_image_file(tmp_path):
    from PIL import Image
    Image.fromarray(np.full((5, 4, 3), 7, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((5, 4), 9, np.uint8)).save(tmp_path / "gray.png")
    assert read_image_file(tmp_path / "a.png").shape == (5, 4, 3)
    assert read_image_file(tmp_path / "gray.png")[0, 0].tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="image file not found"):
        read_image_file(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: not a readable image"):
        read_image_file(tmp_path / "notes.txt")


def test_box_only_samples_flip_and_convert_without_masks():
    """A box-only sample (no "masks": Faster R-CNN style data) goes through the loader's two steps."""
    sample = {"image": np.zeros((6, 10, 3), np.uint8), "boxes": [[1, 1, 4, 5]], "labels": [2]}
    image, target = sample_to_input(sample)
    assert "masks" not in target and target["boxes"].shape == (1, 4)
    _, flipped = hflip(image, target)
    assert "masks" not in flipped
    np.testing.assert_array_equal(flipped["boxes"], [[6, 1, 9, 5]])
