"""The .npz readers of mixdvae.utils.io: header-only shapes and streaming into a buffer."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from mixdvae.errors import DataFormatError
from mixdvae.errors import ConfigError
from mixdvae.utils.io import check_output_file, npz_keys, read_npz, read_npz_into, read_npz_shapes


def test_streaming_read_equals_the_eager_one(tmp_path):
    """read_npz_into gives read_npz's array (cast to the buffer's dtype) for a compressed archive larger
    than one 16 MB block, and read_npz_shapes its shape."""
    values = np.random.default_rng(1).normal(size=(5, 1000, 1000))  # 40 MB of float64
    np.savez_compressed(tmp_path / "a.npz", x=values, y=np.arange(3))
    assert read_npz_shapes(tmp_path / "a.npz", ("x", "y")) == {"x": (5, 1000, 1000), "y": (3,)}
    out = np.empty((5, 1000, 1000), np.float32)
    read_npz_into(tmp_path / "a.npz", "x", out)
    np.testing.assert_array_equal(out, read_npz(tmp_path / "a.npz", ("x",))["x"].astype(np.float32))


def test_streaming_read_refuses_a_wrong_shape_or_a_cut_array(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.ones((4, 3)))
    with pytest.raises(DataFormatError, match=r"'x' has shape \(4, 3\), expected \(4, 2\)"):
        read_npz_into(tmp_path / "a.npz", "x", np.empty((4, 2)))
    whole = io.BytesIO()
    np.save(whole, np.ones((100, 10)))
    with zipfile.ZipFile(tmp_path / "cut.npz", "w") as archive:
        archive.writestr("x.npy", whole.getvalue()[:-8])  # the last value missing
    with pytest.raises(DataFormatError) as err:
        read_npz_into(tmp_path / "cut.npz", "x", np.empty((100, 10)))
    assert str(err.value) == f"{tmp_path / 'cut.npz'}: cannot read the arrays (the array ends after 999 of 1000 values)"


@pytest.mark.parametrize("case", ["missing", "text", "npy", "no-key"])
def test_header_and_streaming_readers_give_read_npz_errors(tmp_path, case):
    """A missing file, a text file, a single .npy array and a missing key: the same one line from all
    three readers."""
    path = tmp_path / "bad.npz"
    if case == "text":
        path.write_text("x\n1 2 3\n")
    elif case == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.ones(3))
    elif case == "no-key":
        np.savez(path, other=np.ones(3))
    messages = []
    for read in (lambda: read_npz(path, ("x",), what="spectra file"),
                 lambda: read_npz_shapes(path, ("x",), what="spectra file"),
                 lambda: read_npz_into(path, "x", np.empty(3), what="spectra file")):
        with pytest.raises(DataFormatError) as err:
            read()
        messages.append(str(err.value))
    assert len(set(messages)) == 1 and messages[0].startswith(f"{path}: ") and "\n" not in messages[0], messages


def test_npz_keys_lists_the_arrays_or_none(tmp_path):
    np.savez(tmp_path / "a.npz", power=np.zeros(3), meta=np.array("{}"))
    assert npz_keys(tmp_path / "a.npz") == ["power", "meta"]
    np.savez(tmp_path / "empty.npz")
    assert npz_keys(tmp_path / "empty.npz") == []
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "text.npz").write_text("not an archive")
    for path in (tmp_path / "one.npy", tmp_path / "text.npz", tmp_path / "missing.npz", tmp_path):
        assert npz_keys(path) is None


def test_check_output_file_refuses_what_could_not_be_written(tmp_path):
    check_output_file(tmp_path / "new" / "deeper" / "r.json", "--json")  # missing folders are made when written
    check_output_file(tmp_path / "r.json", "--json")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=rf"^--json {tmp_path}/afile/sub/r.json: {tmp_path}/afile is a file, not a folder$"):
        check_output_file(tmp_path / "afile" / "sub" / "r.json", "--json")
    with pytest.raises(ConfigError, match=rf"^--json {tmp_path}: a folder, expected a file name$"):
        check_output_file(tmp_path, "--json")
    assert not (tmp_path / "new").exists()
