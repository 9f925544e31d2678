"""HTTP views served by every worker's Faust web server."""

from __future__ import annotations

from faust.web import Request, Response, View

from stockapp.app import app


@app.page("/health")
class Health(View):
    """Process liveness: answers as soon as the web server runs."""

    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok", "app": app.conf.id})


@app.page("/stats")
class Stats(View):
    """Counters of this worker: quotes applied, late, invalid (dead-lettered), duplicates."""

    async def get(self, request: Request) -> Response:
        from agents import quotes

        proc = quotes.processor
        counters = dict(proc.stats) if proc else {}
        retries = proc.writer.retries if proc else 0
        # What an operator asks when a candle does not close: which symbols still have a
        # forming candle, and how far each quotes partition has been processed.
        forming = sorted(s for s, st in proc.states.items() if st.has_forming) if proc else []
        positions = dict(sorted(proc.position.items())) if proc else {}
        return self.json(
            {
                "counters": counters,
                "cassandra_retries": retries,
                "forming": forming,
                "positions": positions,
            }
        )
