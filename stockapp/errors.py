"""Errors a user can act on: the CLI prints their message on one line, without a traceback."""


class StockappError(Exception):
    """Base for errors whose message tells the user what to do."""


class ConnectivityError(StockappError):
    """A server the program needs did not answer."""
