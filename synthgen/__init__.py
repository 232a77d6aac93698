"""synthgen: aligned multi-domain synthetic datasets from a frozen GAN (latent space anchoring)."""

__version__ = "0.1.0"

# The Python API mirrors the CLI; resolved lazily so that `import synthgen` stays free of torch.
_API = {"fit": "synthgen.anchors", "translate": "synthgen.anchors", "load_anchor": "synthgen.anchors",
        "load_generator": "synthgen.generators", "sample_dataset": "synthgen.sample.sampler"}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'synthgen' has no attribute {name!r}")
