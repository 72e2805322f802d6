"""DSPy signatures of cscprog: the declarative prompts of rewriting, classification, role-play and response."""
