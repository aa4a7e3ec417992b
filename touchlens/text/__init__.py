"""Pure text tools for customer feedback comments: scrubbing personal data, sentiment and recurring themes."""
