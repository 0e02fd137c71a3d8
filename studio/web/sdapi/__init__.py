"""AUTOMATIC1111's HTTP API (`/sdapi/v1`), served next to the page on the same engine."""
