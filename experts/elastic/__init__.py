"""The shipped ``elastic`` expert: Kibana sample indices → Elasticsearch Query DSL (see README.md)."""
