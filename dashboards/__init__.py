"""Web views over the service API (see issue: the service)."""
