"""Enhancing: training data for fine-tuning (one example per supporter turn) and its export formats."""
