"""The built-in default world: a small StyleGAN2 trained on ToyFaces RGB and its anchors."""
