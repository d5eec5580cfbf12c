"""Bookings: holds, the state machine, double-booking protection, idempotent creation and reviews."""
