"""The front door: the data-plane gateway, the management API and the OpenAPI document.

Everything here is derived from the route table in ``maas_ray/routes/``.
"""
