"""The report: charts for both sides, the Markdown summary, Mermaid charts for a job summary,
the one-file HTML report, and Markdown that renders run data inert."""
