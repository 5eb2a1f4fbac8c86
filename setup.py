"""Build hook: compiles the native realtime core (bridge/live/core.c) through cffi at install."""

from setuptools import setup

setup(cffi_modules=["bridge/live/core_build.py:ffibuilder"])
