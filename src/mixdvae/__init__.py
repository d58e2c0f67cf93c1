"""mixdvae: mixture of dynamical variational autoencoders for multi-source tracking and separation."""

__version__ = "0.1.0"

__all__ = ["__version__"]
