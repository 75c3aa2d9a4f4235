"""A function for local Lambda's tests: its first invocation in a warm process fails."""

CALLS = {"count": 0}


def handler(event, context):
    CALLS["count"] += 1
    if CALLS["count"] == 1:
        raise RuntimeError("the first attempt fails (as an Airflow 5xx does in the trigger Lambda)")
    return {"attempt": CALLS["count"], "records": len(event.get("Records", []))}
