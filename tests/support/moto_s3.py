"""``moto_server`` with S3's conditional writes made one step, as S3 makes them.

Run as ``python -m tests.support.moto_s3 -H HOST -p PORT`` (moto_server's own options).

moto 5.2.5's ``S3Response.put_object`` (``moto/s3/responses.py``) honours ``If-Match`` and
``If-None-Match: *`` (412 PreconditionFailed), but it looks for the existing object and stores the new one
without a lock, in a threaded server: two concurrent conditional writes could both pass the check. S3
decides conditional writes atomically (Amazon S3 User Guide, "Conditional requests": of concurrent
conditional writes one succeeds, the others get 412 or 409). The store's tests count winners, so the writes
are serialised here. (In 200 rounds of 16 concurrent writers unpatched moto never let two win; it is the
GIL's doing, not a promise.)
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3.responses import S3Response
from moto.server import main

_WRITES = threading.Lock()
_original_put_object = S3Response.put_object


def _put_object(self: Any) -> Any:
    with _WRITES:
        return _original_put_object(self)


S3Response.put_object = _put_object  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
