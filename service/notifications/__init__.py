"""Notifications to guests and hosts: written with the state change, delivered later by a worker job."""
