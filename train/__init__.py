"""Headless training and evaluation: ``python -m train --help``."""
