"""A fake Kubernetes API server for tests (a test double, real HTTP).

``FakeKube`` serves list/watch/get/create/patch/delete for the kinds the
agent watches, on 127.0.0.1 and a random port, for the official
``kubernetes`` client used unchanged. See ``server.py`` for the fault
injection API.
"""
from .server import FakeKube, RequestRecord, status_body

__all__ = ["FakeKube", "RequestRecord", "status_body"]
