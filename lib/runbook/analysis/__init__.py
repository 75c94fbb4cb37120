"""The analysis: the request log read into numbers, the comparison with the base, the SLO checks,
the server side set against Locust's view, and the result document that carries the verdict."""
