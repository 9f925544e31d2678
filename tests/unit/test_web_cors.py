from types import SimpleNamespace

import pytest

from stockapp.settings import load_settings
from stockapp.web import http


def request(origin: str | None, host: str = "127.0.0.1:6066") -> SimpleNamespace:
    headers = {"Origin": origin} if origin else {}
    return SimpleNamespace(headers=headers, host=host)


@pytest.fixture
def allow(monkeypatch):
    def set_origins(*origins: str) -> None:
        settings = load_settings().model_copy(update=dict(cors_origins=origins))
        monkeypatch.setattr(http, "get_settings", lambda: settings)

    return set_origins


def test_same_origin_only_by_default(allow):
    allow()
    assert http.cors_headers(request("http://elsewhere.example")) == {}
    assert http.origin_allowed(request("http://127.0.0.1:6066"))  # the page the worker served
    assert not http.origin_allowed(request("http://elsewhere.example"))
    assert http.origin_allowed(request(None))  # not a browser


def test_listed_origins_are_allowed(allow):
    allow("http://localhost:5173")
    assert http.cors_headers(request("http://localhost:5173")) == {
        "Access-Control-Allow-Origin": "http://localhost:5173",
        "Vary": "Origin",
    }
    assert http.origin_allowed(request("http://localhost:5173"))
    assert http.cors_headers(request("http://localhost:5174")) == {}


def test_star_allows_any(allow):
    allow("*")
    assert http.cors_headers(request("http://a.example"))["Access-Control-Allow-Origin"] == (
        "http://a.example"
    )
