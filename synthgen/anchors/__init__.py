"""Domain anchors: specs and codecs, encoder E_d, regressor R_d, the anchor file, fit, translate."""
from synthgen.anchors.anchor import Anchor, AnchorFileError, AnchorMismatchError, load_anchor, save_anchor
from synthgen.anchors.spec import DomainSpec, DomainSpecError, builtin_domains_dir, load_domain_spec

# Imported after the submodules of the same names so the package attributes are the functions.
from synthgen.anchors.fit import FitConfig, FitError, fit  # noqa: E402
from synthgen.anchors.translate import TranslateError, translate  # noqa: E402

__all__ = [
    "Anchor", "AnchorFileError", "AnchorMismatchError", "DomainSpec", "DomainSpecError", "FitConfig", "FitError",
    "TranslateError", "builtin_domains_dir", "fit", "load_anchor", "load_domain_spec", "save_anchor", "translate",
]
