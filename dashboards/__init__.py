"""The web dashboard: static views over the service's API (``static/``), served by ``nas serve``
at ``/ui/``. Plain HTML, CSS and JavaScript with hand-drawn SVG plots: nothing is fetched from a
CDN, the page works on a machine without internet. The service finds ``static/`` through the
import system without importing this package (``nas.service._app._dashboard_dir``)."""
