"""In-memory stand-ins for the exchange used by the tests."""
