"""HTTP served by every worker's Faust web server: the JSON API, live push, operational
endpoints and the front end. Importing the package registers the views."""

from stockapp.web import api, live, ops  # noqa: F401
