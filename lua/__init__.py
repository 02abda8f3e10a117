"""The Lua scripts, shipped as package data: one per verb (``<verb>-<numkeys>.lua``), each opening
with a header of its KEYS, ARGV, Returns and Errors, and the shared ``includes/`` they name.

No Python lives here: ``ferrymq.engine.scripts`` reads these files and loads them into Redis.
"""
