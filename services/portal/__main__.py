"""`python -m services.portal`: serve the portal with uvicorn (HOST, PORT), as `python -m shared.serve portal`."""

import sys

from shared.serve import main

if __name__ == "__main__":
    sys.exit(main(["portal"]))
