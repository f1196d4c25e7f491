"""The portal: the people-facing web application (server-rendered pages; issue 15)."""
