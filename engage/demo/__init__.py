"""The demo: sample services, users, patients and six months of responses."""
