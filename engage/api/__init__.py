"""The JSON API for EHR integrators: API keys, bearer authentication, enrolment endpoints."""
