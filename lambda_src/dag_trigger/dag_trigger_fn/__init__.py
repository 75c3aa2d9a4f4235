"""The trigger Lambda: starts allow-listed Airflow DAGs on MWAA for GitLab CI jobs."""
