"""Test-set figures for any saved model: ``evaluate(model)`` dispatches on the family."""
from genapp.evaluation.likelihood import evaluate, vae_test_figures

__all__ = ["evaluate", "vae_test_figures"]
