//! A check's verdict from its assertions: each evaluated against what the check observed (a
//! response, or none), and the outcome they give.

use std::time::Duration;

use http::HeaderMap;
use vigil_schema::{AssertionResult, MonitorSpec, Outcome};

use super::{Assertions, Failure};
use crate::probe::condition::{Condition, Response};

/// What a check reports: its outcome, the error, and each assertion's result.
pub(in crate::probe) type Verdict = (Outcome, Option<String>, Vec<AssertionResult>);

impl Assertions {
    /// Each assertion evaluated against `response` (`texts`: as written, reported for one
    /// that does not parse, which fails), with its condition when it parsed.
    fn evaluate<'a>(
        &'a self,
        texts: &'a [String],
        response: &'a Response<'_>,
    ) -> impl Iterator<Item = (Option<&'a Condition>, AssertionResult)> + 'a {
        self.0
            .iter()
            .zip(texts)
            .map(|(condition, text)| match condition {
                Ok(condition) => (Some(condition), condition.evaluate(response)),
                Err(e) => (
                    None,
                    AssertionResult {
                        condition: text.clone(),
                        passed: false,
                        actual: Some(format!("invalid condition: {e}")),
                    },
                ),
            })
    }
}

/// The verdict on a response with status `status`: the first failing assertion fails the
/// check; without one, a status of 400 or more does unless an assertion looked at the status.
pub(super) fn with_response(
    spec: &MonitorSpec,
    assertions: &Assertions,
    response: &Response<'_>,
    status: u16,
) -> Verdict {
    let failing = (status >= 400).then(|| (Outcome::HttpStatus, format!("http status {status}")));
    judge(
        spec,
        assertions,
        response,
        failing,
        Condition::checks_status,
    )
}

/// The verdict on what a check observed: the first failing assertion fails the check; without
/// one, `failing` (what the kind itself counts as a failure) does unless an assertion
/// `overrides` it (looks at what failed, as `[STATUS]` does for an HTTP status).
pub(in crate::probe) fn judge(
    spec: &MonitorSpec,
    assertions: &Assertions,
    response: &Response<'_>,
    failing: Option<(Outcome, String)>,
    overrides: fn(&Condition) -> bool,
) -> Verdict {
    let mut results = Vec::with_capacity(assertions.0.len());
    let mut first_failure = None;
    let mut overridden = false;
    for (condition, result) in assertions.evaluate(&spec.assertions, response) {
        overridden |= condition.is_some_and(overrides);
        if !result.passed && first_failure.is_none() {
            first_failure = Some(format!(
                "assertion failed: {} (actual: {})",
                result.condition,
                result.actual.as_deref().unwrap_or("none")
            ));
        }
        results.push(result);
    }
    match (first_failure, failing) {
        (Some(message), _) => (Outcome::Assertion, Some(message), results),
        (None, Some((outcome, message))) if !overridden => (outcome, Some(message), results),
        (None, _) => (Outcome::Ok, None, results),
    }
}

/// The verdict on a check that got no response: its assertions evaluated without one
/// (`[CONNECTED]` false, no status, no body) when it got no connection, so each is recorded;
/// if they expect exactly that (one looks at `[CONNECTED]` and all hold, as in
/// `[CONNECTED] == false`), the check passes. A check the egress policy blocked or whose URL is
/// unusable never tried to connect, and stays failed without assertions.
pub(in crate::probe) fn without_response(
    spec: &MonitorSpec,
    assertions: &Assertions,
    elapsed: Duration,
    failure: Failure,
) -> Verdict {
    let unconnected = matches!(
        failure.outcome,
        Outcome::Dns | Outcome::Connect | Outcome::Tls | Outcome::Timeout
    );
    if !unconnected || assertions.0.is_empty() {
        return (failure.outcome, Some(failure.message), Vec::new());
    }
    let headers = HeaderMap::new();
    let response = Response::unconnected(elapsed, &headers);
    let (mut expected, mut all) = (false, true);
    let results = assertions
        .evaluate(&spec.assertions, &response)
        .map(|(condition, result)| {
            expected |= condition.is_some_and(Condition::checks_connected);
            all &= result.passed;
            result
        })
        .collect();
    match expected && all {
        true => (Outcome::Ok, None, results),
        false => (failure.outcome, Some(failure.message), results),
    }
}
