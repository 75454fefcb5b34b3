"""Experiment trackers (``--tracker mlflow|wandb|tensorboard``): MLflow, Weights & Biases and
TensorBoard runs of a search (a child run per candidate), a training and a validation.

``base`` defines the :class:`~nas.track.base.Tracker` protocol and which trackers there are;
one module per framework imports it (``mlflow_tracker``, ``wandb_tracker``,
``tensorboard_tracker``); ``guard`` runs them so that they never fail or slow a job;
``search`` and ``jobs`` say what each job logs.
"""

from nas.track.base import TRACKERS, RunInfo, Tracker, check_trackers
from nas.track.guard import Trackers, open_trackers

__all__ = ["TRACKERS", "RunInfo", "Tracker", "Trackers", "check_trackers", "open_trackers"]
