"""The HTML before/after report of a run's outputs (`facefix report`, `fix --report`): gathered
from the outputs' own records (build.py), rendered as one self-contained page (html.py) with
thumbnails beside it (thumbnails.py). Terminal output lives in `facefix_cli.cli.console`."""
