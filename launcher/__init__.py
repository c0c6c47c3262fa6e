"""Command-line entry points: ``crypten-lite``, ``crypten-lite-launch``, ``crypten-lite-party``.
Imports only :mod:`crypten_lite.runtime`."""
