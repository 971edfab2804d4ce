"""Delivery: the outbox of messages to patients, channels (email, SMS), dispatch, opt-out."""
