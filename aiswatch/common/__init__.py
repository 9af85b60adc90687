"""The bottom layer every folder may use: errors, secrets, durations, times, host:port, settings
models, merging.

The standard library and pydantic only, nothing else of aiswatch: each module does one small
thing, once, for the whole project.
"""
