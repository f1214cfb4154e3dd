"""nas: job specs, proxies, the search loop, storage, export, API and CLI."""
