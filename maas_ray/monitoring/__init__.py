"""Monitoring: the prediction log, ground-truth labels, and the figures built from them.

A replica samples its predictions into a ``PredictionLog`` (``log.py``) and writes
them, off the request path and in batches, as encrypted Parquet files into the
artifacts of a monitoring run in MLflow (``store.py``). Labels sent to the
feedback route are stored the same way; ``quality.py`` joins them to the logged
predictions and computes accuracy, F1, MAE and the operational figures.
"""
