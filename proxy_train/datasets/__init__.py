"""Individual data sources. Each returns a :class:`~proxy_train.datasets.base.RawSource` whose
images are decoded only for the rows that survive class/per-class selection."""
