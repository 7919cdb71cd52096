"""Export and serving: TF Serving SavedModels, ScaNN-ready items, checks, recommend CLI.

Modules (this ``__init__`` imports none of them, so ``python -m export.check``
runs without importing ``adaptau_tf``):

* :mod:`export.saved_model` - ``export_model`` / ``adaptau-export``;
* :mod:`export.serving_module` - ``ServingModule`` (the serving graph);
* :mod:`export.scann_index` - ``ScannIndex`` (build, save, load, search);
* :mod:`export.check` - ``ExportChecker`` / ``adaptau-check-export``;
* :mod:`export.recommend` - ``Recommender`` / ``adaptau-recommend``.
"""
