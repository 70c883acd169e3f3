"""Package discovery for the layout of docs/design.md: ``envs/`` and ``agents/`` install as
``metagym.envs`` and ``metagym.agents`` (the folder mapping is ``[tool.setuptools.package-dir]``
in pyproject.toml). Every folder under the three is found (data folders included), so a new
subpackage ships without editing a list. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup


def found(*tops: str) -> list[str]:
    include = [f"{top}{tail}" for top in tops for tail in ("", ".*")]
    return find_namespace_packages(include=include, exclude=["*.__pycache__"])


setup(packages=[*found("metagym"), *(f"metagym.{name}" for name in found("envs", "agents"))])
