"""Text analysis for feedback, free of Flask: themes and sentiment, safety rules, PII.

Nothing here imports Flask or the rest of ``engage``, so the CLI, the benchmarks
and the tests can use it without an application.
"""
