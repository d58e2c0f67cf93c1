"""Separation presets: ``reference`` is the original code's setting, ``default`` differs only where
documented, every field is checked and every method is known to the CLI."""

from __future__ import annotations

import dataclasses

import pytest

from mixdvae.errors import ConfigError
from mixdvae.separation.presets import DEFAULT, METHODS, PRESETS, REFERENCE, SeparationConfig, get_preset


def test_get_preset_returns_the_registered_configs():
    assert set(PRESETS) == {"reference", "default"}
    assert get_preset("reference") is REFERENCE and get_preset("default") is DEFAULT


def test_unknown_preset_names_the_choices():
    choices = r"\(choose from \['default', 'reference'\]\)"
    with pytest.raises(ConfigError, match=r"--preset: 'best' is not a preset " + choices):
        get_preset("best")


def test_reference_is_the_original_setting():
    """Reference section 6: 50-frame chunks, 70 iterations, v^x = 0.03 |X|^2 fixed, sampled power
    feedback with U[0, 1) noise, sampled z, frame-by-frame recursion started from the first frame."""
    assert REFERENCE.chunk_frames == 50
    vem, prior = REFERENCE.vem, REFERENCE.prior
    assert (vem.iterations, vem.tol, vem.noise_ratio, vem.m_step) == (70, None, 0.03, False)
    assert (vem.assignment, vem.temperature, vem.assignment_prior) == ("mean_field", 1.0, "uniform")  # p(w) = 1/N
    assert (prior.recursion, prior.feedback, prior.noise, prior.sample_z, prior.first_input) == (
        "sequential", "sample", "uniform", True, "first_frame")


def test_default_is_deterministic_and_parallel():
    """The priors read the mixture, at every iteration, with the encoder mean (stop 27): one reading
    per chunk, no gate between two loops."""
    prior = DEFAULT.prior
    assert (prior.recursion, prior.feedback, prior.sample_z, prior.first_input) == (
        "parallel", "mixture", False, "zero")
    assert DEFAULT.mixture_gate_db is None
    assert DEFAULT.chunk_frames == REFERENCE.chunk_frames  # both read the same chunks


def test_presets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.chunk_frames = 10  # type: ignore[misc]


def test_methods_are_distinct_and_include_every_baseline():
    assert len(set(METHODS)) == len(METHODS)
    assert set(METHODS) == {"mixdvae", "deep-ar", "dvae-init", "nmf", "temporal-nmf", "oracle-ibm", "oracle-wiener",
                            "mixture"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chunk_frames", 1),
        ("chunk_frames", 20.0),
        ("overlap_frames", -1),
        ("overlap_frames", 50),
        ("nmf_iterations", 0),
        ("temporal_weight", -0.5),
        ("temporal_weight", float("nan")),
        ("batch_size", 0),
    ],
)
def test_bad_fields_raise_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"SeparationConfig\.{field} = "):
        SeparationConfig(**{field: value})


def test_edge_values_are_accepted():
    config = SeparationConfig(chunk_frames=2, overlap_frames=1, nmf_iterations=1, temporal_weight=0.0, batch_size=1)
    assert config.overlap_frames == 1
    assert SeparationConfig(chunk_frames=10, overlap_frames=0).overlap_frames == 0
