"""Installs the top-level domains/ folder (built-in specs and shipped default weights) as
synthgen/_domains, so a non-editable `pip install .` finds them beside the code."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["synthgen", "synthgen.*"]) + ["synthgen._domains"],
    package_dir={"synthgen._domains": "domains"},
    package_data={"synthgen._domains": ["*.json", "*.md", "*.safetensors"]},
)
