"""The bottom layer every folder may use: errors, secrets, durations, times, host:port, geodesy.

Standard library only (and nothing of aiswatch): each module does one small thing, once, for the
whole project.
"""
