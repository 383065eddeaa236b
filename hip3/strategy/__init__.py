"""Strategy: pure detector and gates, and the scanner task that runs them."""
