"""Feedback: free-text comments, their themes, sentiment, safety flags, triage and routing."""
