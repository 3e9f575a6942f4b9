"""The web console at ``/console``: server-rendered pages over the principal's own API calls."""
