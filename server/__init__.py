"""The process around the HTTP app: the ``ferrymq`` command line (``cli.py``, the console script),
``ferrymq serve`` under uvicorn with its worker processes and graceful shutdown (``serve.py``),
the slow-client guards of uvicorn's protocols (``timeouts.py``) and the embedded redis-server
supervisor (``embedded.py``).

May import: ``ferrymq.engine``, ``ferrymq.http`` and third-party libraries. Nothing imports it
but the console script and the tests: the engine and the HTTP app run without it
(``tests/test_layout.py`` checks it).
"""
