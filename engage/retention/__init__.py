"""Retention: how long each kind of data is kept, and removing it once that time is past."""
