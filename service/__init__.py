"""The StayPulse booking platform: settings, database, auth, the HTTP API, the app factory and the CLI."""
