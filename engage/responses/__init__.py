"""Staff view of responses: the list per service and one response's answers."""
