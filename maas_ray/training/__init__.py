"""Training as a service: fit a pipeline as a Ray task, evaluate it on held-out rows,
log the run to MLflow and register the result with its lineage.

``data.py`` reads and checks the data, ``estimators.py`` builds the pipeline a spec
names, ``evaluate.py`` scores predictions, ``fit.py`` is the Ray task, ``run.py``
ties them into one training (what ``maas_ray.jobs.train`` runs), ``staging.py`` is
the client's half: it checks the data before any cluster work and stages it in
MLflow for the job.
"""
