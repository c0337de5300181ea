"""``GET /console``: the web console, with nothing fetched from outside.

The page is public; everything it shows comes from the platform's own API, called
by its script with the key the user signed in with (kept in the tab's
``sessionStorage``: never in a URL or a cookie). Its script and style sheet lie
beside this module (``static/``); the charts are drawn by Plotly's script from the
``plotly`` package, an explanation's bars by the page's own script (plain elements
sized by CSS). The gateway serves all of them, so the page works offline.

The script spells no URL: the page hands it the route table's paths (``ROUTES``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import cache
from importlib.resources import files

from maas_ray.errors import NotFound
from maas_ray.routes import BY_NAME, url

# The files the page loads, and their content types; any other name is a 404.
ASSETS = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "plotly.min.js": "text/javascript",
}
# The routes the script calls, by name (their path templates go into the page).
ROUTES = (
    "whoami",
    "status",
    "list_models",
    "show_model",
    "model_metadata",
    "predict",
    "explain",
    "monitoring",
    "promote",
    "rollback",
    "canary",
    "operation",
)
# Scripts only from the platform itself; Plotly sets inline styles on what it draws.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def page() -> str:
    """The HTML of ``/console``: a sign-in form, then the console itself."""
    paths = json.dumps({name: BY_NAME[name].path for name in ROUTES})

    def asset(name: str) -> str:  # ?v= the file's digest: a new release is fetched anew
        return url("console_asset", asset=name) + "?v=" + _digest(name)

    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>maas_ray console</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{asset("console.css")}">
</head>
<body>
  <header>
    <h1>maas_ray</h1>
    <span id="who" hidden></span>
    <nav id="links" hidden>
      <a id="mlflow-link" target="_blank" rel="noopener">MLflow UI</a>
      <a href="{url("docs")}" target="_blank" rel="noopener">API docs</a>
      <button id="signout" type="button">Sign out</button>
    </nav>
  </header>
  <main>
    <section id="signin-panel">
      <h2>Sign in</h2>
      <form id="signin" method="post" autocomplete="off">
        <label for="api_key">API key</label>
        <input id="api_key" name="api_key" type="password" required
               placeholder="maas_..." spellcheck="false">
        <button type="submit">Sign in</button>
      </form>
      <p id="signin-error" class="error" role="alert" hidden></p>
      <p class="hint">The key stays in this tab only (sessionStorage) and goes with every
        call the page makes; <code>maas keys create</code> makes one.</p>
    </section>
    <div id="app" hidden>
      <p id="notice" class="error" role="alert" hidden></p>
      <section id="deployments-panel">
        <h2>Deployments</h2>
        <table id="deployments"><thead><tr>
          <th>model</th><th>version</th><th>alias</th><th>replicas</th><th>health</th>
          <th>traffic</th><th>quality</th></tr></thead><tbody></tbody></table>
      </section>
      <section id="catalog-panel">
        <h2>Models</h2>
        <ul id="catalog"></ul>
        <form id="open-form" hidden>
          <label>Model <input name="model" required spellcheck="false"></label>
          <button type="submit">Open</button>
        </form>
      </section>
      <section id="model-panel" hidden>
        <h2 id="model-title"></h2>
        <table id="versions"><thead><tr>
          <th>version</th><th>aliases</th><th>registered</th><th>signature</th>
          <th>lineage</th><th>training metrics</th></tr></thead><tbody></tbody></table>
        <div id="actions" hidden>
          <h3>Change what serves</h3>
          <form id="promote-form">
            <label>Promote version <select name="version"></select></label>
            <button type="submit">Promote</button>
          </form>
          <form id="rollback-form">
            <button type="submit">Roll back production</button>
          </form>
          <form id="canary-form">
            <label>Canary version <select name="version"></select></label>
            <label>share % <input name="percent" type="number" min="1" max="99"
                                  value="10" required></label>
            <button type="submit">Start canary</button>
          </form>
          <p id="action-result" role="status"></p>
        </div>
        <h3>Try a prediction</h3>
        <div id="examples"></div>
        <form id="try-form">
          <textarea id="try-body" name="body" rows="6" spellcheck="false"></textarea>
          <button type="submit">Predict</button>
          <button id="try-explain" type="button">Explain</button>
        </form>
        <pre id="try-answer"></pre>
        <div id="explanation" aria-live="polite"></div>
        <h3>Live figures <small id="window"></small></h3>
        <div id="charts">
          <div class="chart" id="chart-throughput"></div>
          <div class="chart" id="chart-latency"></div>
          <div class="chart" id="chart-errors"></div>
          <div class="chart" id="chart-quality"></div>
        </div>
        <table id="figures"><thead><tr>
          <th>version</th><th>arm</th><th>requests</th><th>error rate</th><th>p95 ms</th>
          <th>labelled</th><th>accuracy</th><th>f1</th><th>drift</th></tr></thead>
          <tbody></tbody></table>
      </section>
    </div>
  </main>
  <script id="routes" type="application/json">{paths}</script>
  <script src="{asset("plotly.min.js")}"></script>
  <script src="{asset("console.js")}"></script>
</body>
</html>
"""


@cache
def _digest(name: str) -> str:
    return hashlib.sha256(asset(name)[0]).hexdigest()[:12]


@cache
def asset(name: str) -> tuple[bytes, str]:
    """(gzip-compressed content, content type) of one of the page's files; NotFound
    for any other name."""
    if name not in ASSETS:
        raise NotFound(f"no file '{name[:100]}' under {url('console')}")
    if name == "plotly.min.js":
        content = (files("plotly") / "package_data" / name).read_bytes()
    else:
        content = (files("maas_ray.gateway") / "static" / name).read_bytes()
    return gzip.compress(content, mtime=0), ASSETS[name]
