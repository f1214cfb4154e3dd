"""The web dashboard: static views over the service's API (``static/``), served by ``nas serve``
at ``/ui/``. Plain HTML, CSS and JavaScript with hand-drawn SVG plots: nothing is fetched from a
CDN, the page works on a machine without internet."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
