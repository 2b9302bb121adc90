"""Synthetic pose and face sets and the real-format loaders: ``tinybin.data``, re-exported here so that
``import datasets`` works from a clone of the repository (the package itself never imports this file).
"""
from tinybin.data import *  # noqa: F401,F403
from tinybin.data import __all__  # noqa: F401
