"""Shared plumbing: the database base, time, i18n, permissions, mail and tokens."""
