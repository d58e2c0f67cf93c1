"""Loss-curve figure of a pretraining run."""

from __future__ import annotations

from mixdvae.plotting.training import plot_loss_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history(epochs, val_every=1):
    records = []
    for e in range(epochs):
        validated = (e + 1) % val_every == 0
        records.append({
            "epoch": e, "train_loss": 5.0 / (e + 1), "train_recon": 4.0 / (e + 1), "train_kl": 1.0,
            "val_loss": 5.5 / (e + 1) + 0.1 * e if validated else None,
            "val_recon": 4.5 / (e + 1) if validated else None, "val_kl": 1.0 if validated else None,
        })
    return records


def test_writes_a_png_atomically(tmp_path):
    out = plot_loss_curves(tmp_path / "runs" / "loss.png", _history(12, val_every=2))
    assert out == tmp_path / "runs" / "loss.png"
    data = out.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    assert [p.name for p in out.parent.iterdir()] == ["loss.png"]  # no temporary file left


def test_other_formats_and_a_single_epoch(tmp_path):
    svg = plot_loss_curves(tmp_path / "loss.svg", _history(1))
    assert svg.read_text().lstrip().startswith("<?xml")
    pdf = plot_loss_curves(tmp_path / "loss.pdf", [{"epoch": 0, "train_loss": 1.0, "val_loss": None}])
    assert pdf.read_bytes().startswith(b"%PDF")
