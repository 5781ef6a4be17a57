"""One router per resource: search, images, health and stats, admin, the page."""
