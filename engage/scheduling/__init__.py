"""Follow-up: protocols of timepoints, enrolments, and the invitations they plan."""
