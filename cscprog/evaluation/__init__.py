"""Evaluation: the next-supporter-turn task, its metrics, the report and the plots."""
