"""Box helpers: one box_size for tensors and arrays."""

import numpy as np
import torch

from mixdvae.data.boxes import box_size


def test_box_size_is_the_same_for_tensors_and_arrays_and_floors_degenerate_boxes():
    boxes = np.array([[0.1, 0.2, 0.4, 0.8], [0.5, 0.5, 0.5, 0.9], [0.6, 0.3, 0.2, 0.1]])
    want = np.array([[0.3, 0.6, 0.3, 0.6], [1e-3, 0.4, 1e-3, 0.4], [0.4, 0.2, 0.4, 0.2]])
    got_np = box_size(boxes, 1e-3)
    got_t = box_size(torch.from_numpy(boxes), 1e-3)
    assert isinstance(got_np, np.ndarray) and isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_np, want, atol=1e-12)
    np.testing.assert_allclose(got_t.numpy(), want, atol=1e-12)
