"""Improvement teams: the people who own themes of feedback and change care from them."""
