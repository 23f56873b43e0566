"""Maps the top-level folders into the ``agentgym`` namespace.

pyproject.toml holds the metadata; this file only exists because setuptools' declarative
``packages.find`` cannot rename folders (``environments/`` must install as ``agentgym.environments``,
never as a generic top-level ``environments``).
"""

from setuptools import find_packages, setup

PACKAGE_ROOTS = {
    "agentgym": "agentgym",
    "agentgym.environments": "environments",
    "agentgym.trainers": "trainers",
    "agentgym.tools": "tools",
}


def packages() -> list[str]:
    found = []
    for package, folder in PACKAGE_ROOTS.items():
        found.append(package)
        found += [f"{package}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=packages(), package_dir=PACKAGE_ROOTS)
