"""The web side: FastAPI app factory, console (Jinja2 + HTMX) and JSON API."""
