"""`staypulse demo`: a demo host with properties and past stays, and live bookings, payments and cancellations
made through the HTTP API against localstripe, so that a newcomer can watch the dashboard move."""
