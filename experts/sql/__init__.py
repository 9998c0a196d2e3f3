"""The shipped ``sql`` expert: four small Postgres schemas → SQL queries (see README.md)."""
