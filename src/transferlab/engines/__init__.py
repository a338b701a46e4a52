"""Extraction engines: a dataset's features for a run's settings into a feature store. ``local``
(:class:`~transferlab.engines.local.LocalEngine`, the cached extractor in this process) and ``ray``
(:class:`~transferlab.engines.ray.RayEngine`, the same preprocessing and model code inside Ray Data actors, on
one machine or a cluster) implement one interface, :class:`~transferlab.engines.base.Engine`, and write the same
Parquet feature store (``features.store``). Ray is an optional extra (``pip install 'transferlab[ray]'``)."""
