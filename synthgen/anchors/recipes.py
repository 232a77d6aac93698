"""Fit recipes: the value `synthgen fit` takes for each anchoring option left unset.

`sampling` (the default) is the anchoring the built-in world's labels were measured with
(docs/anchors.md, "Recipes"): on a generator whose features are weaker than FFHQ
StyleGAN2's, the paper's settings let the encoder park every file at nearly one latent, and
the regressor then labels `synthgen sample`'s latents poorly. It lands the encoder in z
through G's frozen mapping with the batch prior-matching term, drops the regressor's
BatchNorm, reads the multi-resolution tap where the generator has one, and adds the terms
that train where sampling reads: feature noise, and for masks class-balanced cross-entropy
and part alignment, and for the other regressed domains the sampled-latent cycle. A mask fit
also tries three seeds briefly and continues the one whose large classes follow G's photo
(whether it finds the hair outline is chance; fit.seed_trials). Masks go
without the cycle: from the first step it teaches the encoder to ignore what the regressor
does not yet read from the photo (a mask's hair outline), and the labels never recover it
(docs/anchors.md, "Recipes"). `paper` is the method's released settings (the defaults
before recipes existed).

Every value depends only on the domain's spec and what the generator offers, so the same
recipe takes the same path for the built-in generator, a rosinality or NVIDIA StyleGAN2
checkpoint or BigGAN-deep: options a generator or domain cannot use resolve to off.
"""
from __future__ import annotations

from typing import Any

from synthgen.anchors.spec import DomainSpec
from synthgen.generators.base import DEFAULT_TAP, FrozenGenerator
from synthgen.generators.stylegan2.frozen import PYRAMID_TAP

SAMPLING, PAPER = "sampling", "paper"
RECIPES = (SAMPLING, PAPER)
DEFAULT_RECIPE = SAMPLING

# The options a recipe sets (FitConfig fields whose default is None: "the recipe's"), and
# their values where the domain and the generator can use them.
VALUES = {
    SAMPLING: dict(batch_size=16, lr=5e-4, latent_space="z", lambda_prior=3.0, regressor_batch_norm=False,
                   feature_tap=PYRAMID_TAP, lambda_cycle=1.0, feature_noise=2.0, class_balance=0.5,
                   align_radius=2, align_start=500, trials=3),
    PAPER: dict(batch_size=4, lr=1e-4, latent_space="w+", lambda_prior=0.0, regressor_batch_norm=True,
                feature_tap=DEFAULT_TAP, lambda_cycle=0.0, feature_noise=0.0, class_balance=0.0,
                align_radius=0, align_start=0, trials=1),
}
RECIPE_FIELDS = tuple(VALUES[PAPER])
# Where a value applies; elsewhere the option resolves to off (w+, the default tap, 0).
APPLIES = {
    "latent_space": "z: domains with a regressor on a StyleGAN mapping",
    "lambda_prior": "in z only",
    "feature_tap": "where the generator has it, not rgb",
    "lambda_cycle": "not rgb, not masks", "feature_noise": "not rgb",
    "class_balance": "masks", "align_radius": "masks", "align_start": "masks",
    "trials": "masks, where --steps is at least twice --trial-steps",
}


def option_default_help(field: str) -> str:
    """`[default: recipe: sampling V (where), paper V]` for the --help of a recipe option."""
    def shown(v):
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v
    where = f" ({APPLIES[field]})" if field in APPLIES else ""
    return f"[default: recipe: sampling {shown(VALUES[SAMPLING][field])}{where}, paper {shown(VALUES[PAPER][field])}]"


def resolve_recipe(recipe: str, spec: DomainSpec, generator: FrozenGenerator, given: dict[str, Any],
                   steps: int | None = None, trial_steps: int | None = None) -> dict[str, Any]:
    """Every RECIPE_FIELDS option for `spec` fit to `generator`: the value in `given` where it is
    not None, else `recipe`'s where the domain and generator can use it, else off. `steps` and
    `trial_steps` (the fit's) decide whether seed trials fit in the run."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}")
    values = dict(VALUES[recipe])
    # The rgb domain has no regressor: an encoder only, which inverts photos far better in w+
    # (EVAL.md), with no head for noise or a cycle through decoded outputs to train.
    regressed = not spec.from_generator
    if not (regressed and generator.latent_kind == "w+"):  # z needs a StyleGAN mapping to land through
        values["latent_space"] = "w+"
    if not (regressed and values["feature_tap"] in (DEFAULT_TAP, *generator.extra_taps)):
        values["feature_tap"] = DEFAULT_TAP
    if not regressed:
        values.update(lambda_cycle=0.0, feature_noise=0.0)
    if spec.kind == "mask":
        values["lambda_cycle"] = 0.0  # it costs a mask fit its hair from the start (docs/anchors.md)
    else:
        values.update(class_balance=0.0, align_radius=0, align_start=0, trials=1)  # trials score a mask's classes
    if steps is not None and trial_steps is not None and steps < 2 * trial_steps:
        values["trials"] = 1  # trials as long as the run itself would only multiply its cost
    values.update({k: v for k, v in given.items() if k in RECIPE_FIELDS and v is not None})
    if given.get("lambda_prior") is None and values["latent_space"] != "z":
        values["lambda_prior"] = 0.0  # the prior term matches E's z: nothing to match in w+
    return values
