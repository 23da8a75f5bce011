"""Build script: the Python package is described in pyproject.toml; this file adds the native
extension fhsdk._C (see csrc/)."""

from setuptools import setup

setup()
