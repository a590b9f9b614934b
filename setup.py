"""Build steps pyproject.toml cannot declare: the C parts built with the package."""

from setuptools import setup

setup()
