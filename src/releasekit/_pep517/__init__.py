"""The script that calls a PEP 517 backend's hooks inside a shared build environment
(:mod:`releasekit._buildenv` runs ``_driver.py`` with that environment's python; nothing
imports it)."""
