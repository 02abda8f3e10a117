"""The benchmarks (``python -m bench``; ``bench/README.md`` says what each measures): FerryMQ side
by side with its limits and its peers, results written to ``bench/RESULTS.md``. Not tests, and
not installed: nothing in the ferrymq packages imports from here.

May import: ``ferrymq.engine``, ``ferrymq.http``, ``ferrymq.server``, ``ferrymq.lua`` and
third-party libraries (the peers' clients install on first use)."""
