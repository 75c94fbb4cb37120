"""The GitHub side: the REST plumbing (retries, pagination, hints) and the publish stage."""
