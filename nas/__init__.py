"""Training-aware architecture search: the reward, the ask/tell strategies and the driver
that runs candidates (``nas-search``)."""
