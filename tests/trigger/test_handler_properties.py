"""Thousands of hostile events: the handler always answers with a structured result, and MWAA is
only ever called for a valid request to an allow-listed DAG."""

from __future__ import annotations

import json

import trigger_test_support  # noqa: F401 - puts the handler package on sys.path
from dag_trigger_fn.handler import DagTriggerService
from dag_trigger_fn.validation import RUN_ID_PATTERN, RequestError, parse_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_core.names import TRIGGERABLE_DAGS


class RecordingMwaa:
    """Answers every call with a run; records what reached 'MWAA'."""

    def __init__(self):
        self.calls = []

    def invoke_rest_api(self, **kwargs):
        self.calls.append(kwargs)
        conf = (kwargs.get("Body") or {}).get("conf") or {"project": BOUND_PROJECT}
        return {"RestApiStatusCode": 200, "RestApiResponse": {"dag_run_id": "x", "state": "queued", "conf": conf}}

    def get_environment(self, **kwargs):
        return {"Environment": {"WebserverUrl": "h", "AirflowVersion": "3.3.1"}}


def bound_project(event):
    """The project the invoked alias serves: the one the event asks for, so valid events pass the
    binding and reach MWAA (the binding itself is tested in test_handler.py)."""
    conf = event.get("conf") if isinstance(event, dict) else None
    project = conf.get("project") if isinstance(conf, dict) else None
    return project if isinstance(project, str) else BOUND_PROJECT


BOUND_PROJECT = "fraud"


class NoRetryApi:
    def __init__(self, client):
        from dag_trigger_fn.airflow import AirflowApi

        self._api = AirflowApi(client, "mlops-dev", sleep=lambda s: None)
        self.remaining_seconds = self._api.remaining_seconds

    def call(self, *args, **kwargs):
        return self._api.call(*args, **kwargs)


hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            " ",
            "../../etc/passwd",
            "mlops_training_evaluation; drop table",
            "$(reboot)",
            "`id`",
            "\x00",
            "\ud800",
            "a" * 300,
            "MLOPS_TRAINING_EVALUATION",
            "mlops_training_evaluation ",
            "%2e%2e%2f",
            "{{ dag_run }}",
            "${CI_JOB_TOKEN}",
            "🙂",
            "\n",
            "fraud\n",
            "Fraud",
            "-fraud",
            "gl-1-2/../../x",
            "mlops_retraining",
        ]
    ),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)),
    max_leaves=12,
)
ids = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), hostile_text, st.none(), st.floats(), st.booleans())
dag_ids = st.one_of(st.sampled_from(TRIGGERABLE_DAGS), hostile_text, st.integers(), st.none())
names = st.one_of(st.sampled_from(["fraud", "scorer", "a-b"]), hostile_text, st.integers())
confs = st.one_of(
    st.fixed_dictionaries(
        {"project": names, "model": names}, optional={"image_tag": json_values, "extra": json_values}
    ),
    st.dictionaries(hostile_text, json_values, max_size=4),
    json_values,
)
maybe = st.sampled_from([True, True, True, False])


valid_names = st.from_regex(r"\A[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}\Z")
valid_trigger = st.fixed_dictionaries(
    {
        "action": st.just("trigger"),
        "dag_id": st.sampled_from(TRIGGERABLE_DAGS),
        "pipeline_id": st.integers(1, 36**8 - 1),
        "job_id": st.integers(1, 36**8 - 1),
        "conf": st.fixed_dictionaries(
            {"project": valid_names, "model": valid_names},
            optional={"image_tag": json_values, "retraining": st.booleans()},
        ),
    }
)
valid_status = st.fixed_dictionaries(
    {
        "action": st.just("status"),
        "dag_id": st.sampled_from(TRIGGERABLE_DAGS),
        "dag_run_id": st.from_regex(r"\Agl-[0-9a-z]{1,8}-[0-9a-z]{1,8}\Z"),
    }
)
hostile_fields = {
    "action": st.one_of(st.sampled_from(["trigger", "status"]), hostile_text),
    "dag_id": dag_ids,
    "pipeline_id": ids,
    "job_id": ids,
    "conf": confs,
    "dag_run_id": st.one_of(st.sampled_from(["gl-1-2", "gl-zz-zz"]), hostile_text),
}


@st.composite
def events(draw):
    """A third each: valid requests, valid requests with one field spoiled or removed, junk."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.one_of(valid_trigger, valid_status))
    if kind == 1:
        event = dict(draw(st.one_of(valid_trigger, valid_status)))
        key = draw(st.sampled_from(sorted(hostile_fields) + ["<extra>"]))
        if key == "<extra>":
            event[draw(hostile_text)] = draw(json_values)
        elif key in event and draw(st.booleans()):
            del event[key]
        else:
            event[key] = draw(hostile_fields[key])
        return event
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not even an object
    return {key: draw(strategy) for key, strategy in hostile_fields.items() if draw(maybe)}


# The one strategy both tests below draw from: the property test, and the check that it is not all junk.
HOSTILE_EVENTS = events()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=HOSTILE_EVENTS)
def test_hostile_events_get_structured_answers_and_only_valid_ones_reach_mwaa(event):
    client = RecordingMwaa()
    service = DagTriggerService(NoRetryApi(client), client, "mlops-dev")

    result = service.handle(event, project=bound_project(event))  # must not raise

    json.dumps(result)  # the response is always serialisable
    assert isinstance(result["ok"], bool) and isinstance(result["status"], int)
    try:
        request = parse_request(event)
    except RequestError:
        request = None
    if not result["ok"]:
        assert set(result["error"]) <= {"code", "message", "field"}
        assert "Traceback" not in result["error"]["message"]
    if request is None:
        assert client.calls == [], "an invalid event reached MWAA"
        assert result["ok"] is False and 400 <= result["status"] < 500
        return
    assert request.dag_id in TRIGGERABLE_DAGS
    assert result["ok"] is True and len(client.calls) >= 1
    for call in client.calls:
        dag_in_path = call["Path"].split("/")[2]
        assert dag_in_path in TRIGGERABLE_DAGS and len(call["Path"]) <= 64
        if call["Method"] == "GET":
            assert RUN_ID_PATTERN.fullmatch(call["Path"].rsplit("/", 1)[1])


def test_the_hostile_events_include_valid_requests_that_reach_mwaa():
    """Guard against a property test that only ever sees invalid input: draw from the very strategy it
    uses and require a meaningful share of valid, allow-listed requests that reach MWAA, for each
    action and each triggerable DAG. (A third of the events are meant to be valid; some of those are
    spoiled by a hostile optional value, and some spoiled ones stay valid.)"""
    drawn = []
    reached = []

    @settings(
        max_examples=400,
        derandomize=True,  # the same sample every run: the share below is stable, not flaky
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(event=HOSTILE_EVENTS)
    def sample(event):
        drawn.append(event)
        client = RecordingMwaa()
        result = DagTriggerService(NoRetryApi(client), client, "mlops-dev").handle(event, project=bound_project(event))
        try:
            request = parse_request(event)
        except RequestError:
            return
        if result["ok"] and client.calls:
            dags = {call["Path"].split("/")[2] for call in client.calls}
            assert dags == {request.dag_id} <= set(TRIGGERABLE_DAGS)
            reached.append((request.action, request.dag_id))

    sample()

    assert len(drawn) >= 200, f"hypothesis drew only {len(drawn)} events"
    share = len(reached) / len(drawn)
    assert share >= 0.2, f"only {len(reached)} of {len(drawn)} events ({share:.0%}) were valid and reached MWAA"
    assert {action for action, _ in reached} == {"trigger", "status"}, "an action never reached MWAA"
    assert {dag for _, dag in reached} == set(TRIGGERABLE_DAGS), "a triggerable DAG never reached MWAA"
