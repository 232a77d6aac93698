"""`fit` with the paper's settings under every option a test does not state: the tests that
import it exercise one mechanism at a time (resume, a loss term, a tap) on top of that
baseline, while tests/test_fit_recipes.py covers the default recipe."""
from synthgen.anchors.fit import fit as fit_with_recipe


def fit(*args, **options):
    return fit_with_recipe(*args, **{"recipe": "paper", **options})
