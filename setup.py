"""The package list, which pyproject.toml cannot compute: the library under src/ and the shipped experts
(experts/, installed as ``expertkit_experts`` through ``package-dir``, their data folders as namespace
packages of package data). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

setup(packages=[*find_packages("src"),
                *(p.replace("experts", "expertkit_experts", 1)
                  for p in find_namespace_packages(".", include=["experts", "experts.*"]))])
