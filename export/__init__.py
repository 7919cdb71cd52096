"""Export and serving: TF Serving SavedModels, ScaNN-ready items, checks, recommend CLI.

Installed as ``adaptau_tf.export`` (the repository keeps it at the top level).
Modules (this ``__init__`` imports none of them, so ``python -m
adaptau_tf.export.check`` runs without the package's modeling code):

* :mod:`adaptau_tf.export.saved_model` - ``export_model`` / ``adaptau-export``;
* :mod:`adaptau_tf.export.serving_module` - ``ServingModule`` (the serving graph);
* :mod:`adaptau_tf.export.two_tower` - ``export_two_tower`` / ``adaptau-export-two-tower``
  (any two-tower model: raw ids in, raw candidate ids out);
* :mod:`adaptau_tf.export.two_tower_module` - ``TwoTowerServingModule`` (its graph);
* :mod:`adaptau_tf.export.scann_index` - ``ScannIndex`` (build, save, load, search);
* :mod:`adaptau_tf.export.check` - ``ExportChecker`` / ``adaptau-check-export``;
* :mod:`adaptau_tf.export.two_tower_check` - ``TwoTowerExportChecker`` (two-tower exports);
* :mod:`adaptau_tf.export.integrity` - file checksums of an export and their check;
* :mod:`adaptau_tf.export.recommend` - ``Recommender`` / ``adaptau-recommend``.
"""
