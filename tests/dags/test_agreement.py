"""Prediction agreement of a shadow trial (mlops_dags.agreement) on captured records in SageMaker's
data capture format (developer guide "Capture data from real-time endpoint": one JSON line per
invocation with captureData.endpointInput/endpointOutput and eventMetadata; InvokeEndpoint's
InferenceId "is added to the captured data"), and the verdict and table it feeds."""

from __future__ import annotations

import base64
import json

from mlops_dags.agreement import Agreement, compare, predictions
from mlops_dags.strategies import VariantEvidence, judge, table_text

from mlops_core.pipeline_config import ShadowCriteria


def record(request: str, answer, *, inference_id: str | None = None, content_type="application/json") -> dict:
    data = answer if isinstance(answer, str) else json.dumps({"predictions": answer, "model": {}})
    metadata = {"eventId": "e", "inferenceTime": "2026-12-05T08:00:00Z"}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": request, "encoding": "CSV"},
            "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT", "data": data, "encoding": "JSON"},
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def labels(*values: str) -> list[dict]:
    return [{"label": v, "probability": 0.9} for v in values]


def test_a_classifier_agrees_on_the_label_record_by_record_of_the_same_request():
    production = [record("1,2\n3,4\n", labels("a", "b")), record("5,6\n", labels("a"))]
    candidate = [record("1,2\n3,4\n", labels("a", "a")), record("5,6\n", labels("a")), record("7,8\n", labels("b"))]
    # The third request was not captured for production: it is no pair.
    assert compare(production, candidate, problem_type="classification", tolerance=0.01) == Agreement(2, 3, 2)


def test_the_inference_id_pairs_the_same_input_sent_twice():
    production = [record("1,2\n", labels("a"), inference_id="r1"), record("1,2\n", labels("b"), inference_id="r2")]
    candidate = [record("1,2\n", labels("b"), inference_id="r2")]
    assert compare(production, candidate, problem_type="classification", tolerance=0.01) == Agreement(1, 1, 1)


def test_a_regressor_agrees_within_the_relative_tolerance():
    production = [record("1\n", [{"value": 100.0}]), record("2\n", [{"value": 100.0}])]
    candidate = [record("1\n", [{"value": 104.9}]), record("2\n", [{"value": 106.0}])]
    assert compare(production, candidate, problem_type="regression", tolerance=0.05) == Agreement(2, 2, 1)


def test_csv_json_lines_and_base64_answers_are_read_as_predictions():
    assert predictions({"observedContentType": "text/csv", "data": "label,probability\na,0.9\n"}) == [
        {"label": "a", "probability": "0.9"}
    ]
    lines = '{"value": 1.5}\n{"value": 2.5}\n'
    assert predictions({"observedContentType": "application/jsonlines", "data": lines}) == [
        {"value": 1.5},
        {"value": 2.5},
    ]
    encoded = base64.b64encode(b'{"predictions": [{"label": "x"}]}').decode()
    assert predictions({"observedContentType": "application/x-custom", "data": encoded, "encoding": "BASE64"}) == [
        {"label": "x"}
    ]


def test_an_answer_with_another_number_of_records_or_no_predictions_disagrees():
    production = [record("1\n2\n", labels("a", "b")), record("3\n", labels("a"))]
    candidate = [record("1\n2\n", labels("a")), record("3\n", "not json")]
    assert compare(production, candidate, problem_type="classification", tolerance=0.01) == Agreement(2, 3, 0)


PRODUCTION = VariantEvidence("AllTraffic", invocations=1000, errors=0, latency_p50_ms=8.0, latency_p99_ms=20.0)
CANDIDATE = VariantEvidence("Candidate", invocations=1000, errors=0, latency_p50_ms=8.0, latency_p99_ms=20.0)
CRITERIA = ShadowCriteria(min_invocations=100, min_agreement=0.95)


def test_agreement_below_the_minimum_rejects_and_the_table_shows_it():
    verdict = judge(PRODUCTION, CANDIDATE, CRITERIA, Agreement(pairs=900, records=1000, agreeing=940))
    assert not verdict.promote
    assert verdict.reasons == [
        "the candidate's predictions agree with production's on 94.00 % of 1000 records, fewer than the 95.00 % "
        "required"
    ]
    row = table_text(verdict.table).splitlines()[-1]
    assert row.split() == ["prediction", "agreement", "reference", "94.00", "%", "of", "1000", ">=", "95.00", "%", "no"]
    assert judge(PRODUCTION, CANDIDATE, CRITERIA, Agreement(900, 1000, 950)).promote


def test_no_captured_pair_rejects_when_agreement_is_required_and_is_only_shown_otherwise():
    verdict = judge(PRODUCTION, CANDIDATE, CRITERIA, Agreement(0, 0, 0))
    assert not verdict.promote and verdict.reasons[0].startswith("no captured pair")
    shown = judge(PRODUCTION, CANDIDATE, ShadowCriteria(min_invocations=100), Agreement(10, 10, 7))
    assert shown.promote and shown.table[-1] == ["prediction agreement", "reference", "70.00 % of 10", "", ""]
    # Without capture there is no agreement row at all.
    assert judge(PRODUCTION, CANDIDATE, ShadowCriteria(min_invocations=100)).table[-1][0] == "p99 model latency"
