"""synthgen: aligned multi-domain synthetic datasets from a frozen GAN (latent space anchoring)."""

__version__ = "0.1.0"
