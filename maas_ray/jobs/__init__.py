"""Entrypoints for Ray's job API: ``python -m maas_ray.jobs.<job>``.

Each runs on the cluster (``ray job submit -- python -m maas_ray.jobs.train ...``),
reads the platform's settings from the environment Ray gives it (``maas up``
starts Ray with them), attaches to the cluster, and prints a one-line JSON result
as its last line. ``submit.py`` is the platform's side: it submits, lists, reads
and stops these jobs through Ray's ``JobSubmissionClient``.
"""
