"""Individual data sources and how a source string is read.

The built-in set and CIFAR return a :class:`~proxy_train.datasets.base.RawSource` (held in
memory); image folders and Parquet tables return an
:class:`~proxy_train.datasets.inventory.Inventory` (rows listed, nothing decoded), which
:mod:`proxy_train.datasets.cached` turns into a decoded cache on disk. ``sources`` and
``options`` read source strings; ``select`` chooses classes and caps images per class."""
