"""HTTP served by every worker's Faust web server: the JSON API (``api``), live push
(``live``), operational endpoints (``ops``) and the front end (``static``). The app's
``autodiscover`` imports the view modules, which register themselves on the app."""
