"""The built front end served at ``/`` by every worker, with the headers that keep a browser
from running anything but its own files in it or framing it. Where it is: STOCKAPP_FRONTEND_DIST,
by default a checkout's ``frontend/dist`` or, installed from a wheel, the copy inside the
package (``stockapp/web/frontend``; stockapp/settings.py)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from stockapp.settings import Settings

NOT_BUILT = (
    "<!doctype html><title>stockapp</title><p>The front end is not built (no index.html in "
    "STOCKAPP_FRONTEND_DIST). In a checkout, run <code>make install</code> (or <code>cd frontend "
    "&amp;&amp; npm run build</code>); a wheel carries it built. The API is at "
    "<a href='/api/symbols'>/api/symbols</a>.</p>"
)


# The one style element the page makes: lightweight-charts' attribution logo (its licence asks
# for the logo), allowed by the hash of its text rather than by 'unsafe-inline'.
# tests/unit/test_page_headers.py checks the built bundle against it.
STYLE_HASHES = ("'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='",)
# A Host header fit to be named in the policy (the guard has checked it against the allowed
# hosts; with "*" it could hold anything, and must not add directives).
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def content_security_policy(host: str | None) -> str:
    """The page's policy: its own scripts, styles and images only (Vite's build has no inline
    script), its own API over HTTP and its live WebSockets (named with the page's host, since
    not every browser counts ws:/wss: as 'self'), and no framing by anyone: the rule editor
    is a form worth clickjacking."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' " + " ".join(STYLE_HASHES),
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self'{sockets}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def page_headers(host: str | None) -> dict[str, str]:
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(host),
        "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def mount(web_driver: Any, settings: Settings) -> None:
    dist = settings.frontend_dist
    index = dist / "index.html"

    # Faust's own index view owns the "/" route; a middleware answers "/" before routing.
    @web.middleware
    async def front_page(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/" or request.method not in ("GET", "HEAD"):
            return await handler(request)
        headers = page_headers(request.host)
        if index.is_file():
            return web.FileResponse(index, headers=headers)
        return web.Response(text=NOT_BUILT, content_type="text/html", headers=headers)

    web_driver.web_app.middlewares.append(front_page)
    if (dist / "assets").is_dir():
        # Vite puts hashed bundles under assets/; aiohttp's static route refuses paths that
        # leave the directory.
        web_driver.web_app.router.add_static("/assets", dist / "assets")
