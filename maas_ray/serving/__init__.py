"""Ray Serve deployments that serve registered model versions over HTTP."""
