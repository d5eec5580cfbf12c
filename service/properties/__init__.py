"""What hosts rent: properties, their pricing rules, blocked dates, availability, quotes, search, calendar sync."""
