"""Compile recipes: named DSPy optimizer set-ups over cscprog programs and CSConv metrics."""
