"""``GET /docs``: the OpenAPI document in a browser, with nothing fetched from outside.

Swagger UI's files come from the ``swagger-ui-py`` package and are served by the
gateway itself, so the page works on a machine with no internet access.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from maas_ray.errors import NotFound
from maas_ray.routes import url

# The files the page loads, and their content types; any other name is a 404.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}


def page() -> str:
    """The HTML of ``/docs``: Swagger UI on this platform's ``/openapi.json``."""

    def asset(name: str) -> str:
        return url("docs_asset", asset=name)

    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>maas_ray API</title>
  <link rel="icon" type="image/png" href="{asset("favicon-32x32.png")}">
  <link rel="stylesheet" href="{asset("swagger-ui.css")}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{asset("swagger-ui-bundle.js")}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{url("openapi")}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: false,
    }});
  </script>
</body>
</html>
"""


@cache
def asset(name: str) -> tuple[bytes, str]:
    """(content, content type) of one of the page's files; NotFound for any other name."""
    if name not in ASSETS:
        raise NotFound(f"no file '{name[:100]}' under {url('docs')}")
    return (files("swagger_ui") / "static" / name).read_bytes(), ASSETS[name]
