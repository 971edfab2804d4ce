"""Staff accounts: users, roles, login and logout."""
