"""The API's own description and the service's health."""
