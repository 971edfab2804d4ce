"""The audit log: who saw or changed which patient's data, and when."""
