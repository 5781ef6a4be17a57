"""Container health probe: exit 0 when the service in this container answers /readyz.

Runs as the API image's HEALTHCHECK (standard library only, so no curl is needed); 503
while the model and index load, or no answer, is unhealthy.
"""

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('LEXSEARCH_PORT', '8000')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # refused, timed out, or an HTTP error status such as 503
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
