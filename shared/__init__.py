"""Platform code of every service: settings, database, events, auth, errors, calendar, audit, crypto."""
