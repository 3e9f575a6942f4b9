"""What the fork server does before it forks the first worker (``server.workers``): import
the server and the HTTP stack, read the KMS model, then move everything made so far out of
the garbage collector's way (``gc.freeze``).

Every worker is a fork of this process, so what is done here is done once for all of them,
while the supervisor checks the data directory and the database: a worker starts with the
imports done and the KMS model read (its first ``load_model()`` is a cache hit), and its
lifespan's ``gc.collect()`` walks only what the worker made itself. ``gc.freeze()`` also
keeps the collector from writing to these objects' pages, which the workers share with
this process until they write to them.

Nothing here opens a file, a database connection or a token session, or starts a thread:
a worker inherits nothing but imported code and the model.
"""

from __future__ import annotations

import gc

import uvicorn
import uvicorn.loops.uvloop
import uvicorn.protocols.http.httptools_impl  # noqa: F401

import strongroom.server.app
import strongroom.server.wiring  # noqa: F401
from strongroom.protocol.model import load_model

load_model()
# No gc.collect() first: the imports leave no cyclic garbage (a collect here finds none
# and walks ~70,000 objects, ~0.02 s on the path of every start).
gc.freeze()
