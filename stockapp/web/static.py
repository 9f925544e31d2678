"""The built front end (``frontend/dist``) served at ``/`` by every worker."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stockapp.settings import Settings

NOT_BUILT = (
    "<!doctype html><title>stockapp</title><p>The front end is not built. Run "
    "<code>make install</code> (or <code>cd frontend &amp;&amp; npm run build</code>); the API "
    "is at <a href='/api/symbols'>/api/symbols</a>.</p>"
)


def mount(web_driver: Any, settings: Settings) -> None:
    dist = settings.frontend_dist
    index = dist / "index.html"

    # Faust's own index view owns the "/" route; a middleware answers "/" before routing.
    @web.middleware
    async def front_page(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/" or request.method not in ("GET", "HEAD"):
            return await handler(request)
        if index.is_file():
            return web.FileResponse(index, headers={"Cache-Control": "no-cache"})
        return web.Response(text=NOT_BUILT, content_type="text/html")

    web_driver.web_app.middlewares.append(front_page)
    if (dist / "assets").is_dir():
        # Vite puts hashed bundles under assets/; aiohttp's static route refuses paths that
        # leave the directory.
        web_driver.web_app.router.add_static("/assets", dist / "assets")
