"""Patients: who they are to the hospital, how to reach them, their score history."""
