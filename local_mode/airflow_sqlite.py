"""Connection settings of local Airflow's SQLite database, imported by Airflow itself
(``[database] sql_alchemy_connect_args``; the module must import nothing the Airflow virtualenv
lacks).

MWAA's metadata database is PostgreSQL; locally it is SQLite, where one writer at a time holds the
whole file. With the scheduler, the DAG processor, the triggerer, the task runners and the API
server all writing, sqlite3's default 5 s busy timeout ran out under load: the API answered 500
("database is locked") to the trigger Lambda's dag-run request and a task's XCom push failed. A
longer busy timeout (with the WAL journal local_mode.airflow sets on the file, where readers no
longer block the writer) waits for the lock instead, as PostgreSQL's row locks would.
"""

CONNECT_ARGS = {"timeout": 60}
CONNECT_ARGS_ASYNC = {"timeout": 60}
