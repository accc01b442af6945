"""The downloadable report: figures as PNG (drawn with Pillow), metrics as CSV, configs as JSON."""
from genapp.report.build import build_report

__all__ = ["build_report"]
