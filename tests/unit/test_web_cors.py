from types import SimpleNamespace

import pytest

from stockapp.settings import load_settings
from stockapp.web import cors, http


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
        "Access-Control-Expose-Headers": cors.EXPOSED_HEADERS,
        "Vary": "Origin",
    }
    assert http.origin_allowed(request("http://localhost:5173"))
    assert http.cors_headers(request("http://localhost:5174")) == {}


def test_star_allows_any(allow):
    allow("*")
    assert http.cors_headers(request("http://a.example"))["Access-Control-Allow-Origin"] == (
        "http://a.example"
    )


def test_an_origin_no_browser_sends_is_refused_not_raised(allow):
    allow()
    for origin in ("http://[", "http://\udcff\udcfe", "http://a:99999", "not a url"):
        assert not http.origin_allowed(request(origin)), origin
    allow("*")
    assert not http.origin_allowed(request("http://["))  # "*" means any origin, not any text
    assert not cors.understood("http://[")
    assert cors.understood("null") and cors.understood("http://[::1]:5173")


def test_preflights_are_answered_for_listed_origins_only(allow):
    settings = load_settings().model_copy(update={"cors_origins": ("http://localhost:5173",)})
    headers = cors.preflight_headers("http://localhost:5173", settings)
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert set(headers["Access-Control-Allow-Headers"].split(", ")) >= {
        "Authorization",
        "Content-Type",
    }
    assert set(headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET", "POST", "DELETE"}
    assert cors.preflight_headers("http://localhost:5174", settings) == {}
    assert cors.preflight_headers(None, settings) == {}
