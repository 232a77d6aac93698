"""BigGAN-deep (Brock et al. 2019) in the pytorch-pretrained-biggan layout, as a frozen generator."""
from synthgen.generators.biggan.frozen import FrozenBigGAN
from synthgen.generators.biggan.model import BigGANConfig, BigGANDeep

__all__ = ["BigGANConfig", "BigGANDeep", "FrozenBigGAN"]
