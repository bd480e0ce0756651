//! Multi-step checks: a monitor with `steps` (see [`vigil_schema::StepSpec`]) runs them in
//! order, each an HTTP request over a fresh connection through the egress policy, with the
//! monitor's headers, credentials, redirect and TLS settings, and its own assertions.
//!
//! - **References**: `${steps.STEP.VALUE}` in a step's URL, headers and body is expanded in the
//!   same single pass as `${secret:…}`, so a value a server sent is never read for references.
//!   `VALUE` is a name the step extracted, or `status`, `body`, `body.PATH`, `header.NAME`.
//! - **Extraction**: after a step's assertions hold, each of its `extract` entries is read from
//!   its response; one that does not resolve fails the step (outcome `assertion`), naming it.
//! - **Credentials stay home**: a step whose origin comes from a value of an earlier step (not
//!   the monitor's origin, nor one written in the step's URL) is sent without the monitor's
//!   `auth`, `Authorization`/`Cookie` headers and headers holding a reference, as a redirect to
//!   another origin would be: a response cannot steer credentials elsewhere.
//! - **Failure**: the first failing step ends the check; its outcome is the check's, and the
//!   error says which step (`step 2 "me": assertion failed: …`). The monitor's timeout covers
//!   the whole flow; a step cut off by it is recorded with outcome `timeout`.
//! - **Result**: one probe result, its `steps` listing each step run (timings, status,
//!   assertions); the result's own phases are the sums over its steps, its assertions every
//!   step's (prefixed `STEP: `), its status the last step's.

use std::collections::BTreeMap;
use std::time::Instant;

use http::HeaderMap;
use url::Url;
use uuid::Uuid;
use vigil_schema::{
    AssertionResult, MonitorSpec, Outcome, ProbeResult, StepResult, StepSpec, Timestamp, Timings,
};

use super::condition::{Extractor, Response};
use super::egress::micros;
use super::http::{Assertions, Checker, Failure, Phases, verdict};

/// The `method` of a multi-step check's result.
const METHOD: &str = "STEPS";

/// What a step that ran offers the steps after it.
#[derive(Debug)]
struct Taken {
    name: String,
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    extracted: BTreeMap<String, String>,
}

/// Every step run so far.
#[derive(Debug, Default)]
struct Values(Vec<Taken>);

impl Values {
    /// `${steps.STEP.VALUE}`.
    fn resolve(&self, step: &str, value: &str) -> Result<String, String> {
        let taken = self.0.iter().find(|t| t.name == step).ok_or_else(|| {
            format!("step {step:?} did not run before this one, or got no response")
        })?;
        if let Some(v) = taken.extracted.get(value) {
            return Ok(v.clone());
        }
        let response = Response::new(
            Some(taken.status),
            std::time::Duration::ZERO,
            &taken.headers,
            &taken.body,
            None,
        );
        let placeholder = match value {
            "status" => "[STATUS]".to_owned(),
            "body" => "[BODY]".to_owned(),
            other => match (other.strip_prefix("body."), other.strip_prefix("header.")) {
                (Some(path), _) => format!("[BODY].{path}"),
                (_, Some(name)) => format!("[HEADER].{name}"),
                _ => return Err(format!("step {step:?} extracts no {value:?}")),
            },
        };
        let extractor =
            Extractor::compile(&vigil_schema::Extract::Placeholder(placeholder.clone()))
                .map_err(|e| format!("${{steps.{step}.{value}}}: {e}"))?;
        extractor
            .extract(&response)
            .ok_or_else(|| format!("${{steps.{step}.{value}}}: {placeholder} does not resolve"))
    }
}

/// A flow in progress: the steps done, and the one running (kept when the timeout cuts it).
#[derive(Debug, Default)]
struct Flow {
    results: Vec<StepResult>,
    values: Values,
    running: Option<(usize, Instant)>,
    phases: Phases,
}

/// For each step, whether a later step reads its raw response (`body`, `body.PATH`,
/// `header.NAME`): only those responses are kept for the rest of the flow.
fn raw_needed(steps: &[StepSpec]) -> Vec<bool> {
    let mut needed = vec![false; steps.len()];
    for later in steps {
        let texts = std::iter::once(later.url.as_str())
            .chain(later.body.as_deref())
            .chain(later.headers.values().map(String::as_str));
        for text in texts {
            for r in vigil_schema::egress::references(text).unwrap_or_default() {
                if let vigil_schema::egress::Reference::Step { step, value } = r
                    && (value == "body"
                        || value.starts_with("body.")
                        || value.starts_with("header."))
                    && let Some(i) = steps.iter().position(|s| s.name == step)
                {
                    needed[i] = true;
                }
            }
        }
    }
    needed
}

/// The request of `step`: the monitor with the step's method, URL, body and assertions, and
/// its headers over the monitor's.
fn step_spec(spec: &MonitorSpec, step: &StepSpec) -> MonitorSpec {
    let mut headers = spec.headers.clone();
    for (name, value) in &step.headers {
        headers.retain(|n, _| !n.eq_ignore_ascii_case(name));
        headers.insert(name.clone(), value.clone());
    }
    MonitorSpec {
        method: step.method,
        url: step.url.clone(),
        headers,
        body: step.body.clone(),
        assertions: step.assertions.clone(),
        steps: Vec::new(),
        ..spec.clone()
    }
}

/// Whether `step_url` (as configured) names its origin itself: absolute, with no
/// `${steps.…}` in its scheme and authority.
fn names_its_origin(step_url: &str) -> bool {
    let Some(scheme) = vigil_schema::step_url_scheme(step_url) else {
        return false;
    };
    let rest = &step_url[scheme.len() + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.contains("${steps.")
}

/// Why `step` may not go to an origin a response chose, if it may not: its URL, body or
/// headers (those kept, see [`without_credentials`]) reference a secret or an environment
/// variable, which would then reach that origin.
fn secret_for_elsewhere(spec: &MonitorSpec) -> Option<String> {
    let mut texts = vec![("url", spec.url.as_str())];
    if let Some(body) = &spec.body {
        texts.push(("body", body));
    }
    texts.extend(spec.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    texts.into_iter().find_map(|(field, text)| {
        let found = vigil_schema::egress::references(text).ok()?;
        found
            .iter()
            .any(|r| !matches!(r, vigil_schema::egress::Reference::Step { .. }))
            .then(|| {
                format!(
                    "{field} references a secret, and this step's origin was chosen by a \
                     response: secrets go only to the monitor's origin and origins written in a \
                     step"
                )
            })
    })
}

/// `spec` without what authenticates it: for a request to an origin a response chose.
fn without_credentials(mut spec: MonitorSpec) -> MonitorSpec {
    spec.auth = vigil_schema::Auth::None;
    spec.headers.retain(|name, value| {
        !["authorization", "proxy-authorization", "cookie"]
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c))
            && !super::auth::has_reference(value)
    });
    spec
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.saturating_add(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Checker {
    /// Runs the steps of `spec` as one check.
    pub(super) async fn check_steps(
        &self,
        spec: &MonitorSpec,
        scheduled_at: Timestamp,
    ) -> ProbeResult {
        let event_time = Timestamp::now();
        let start = Instant::now();
        let mut flow = Flow::default();
        let mut cert_expiry: Option<Timestamp> = None;
        let ran = tokio::time::timeout(
            spec.timeout,
            self.run_flow(spec, &mut flow, &mut cert_expiry),
        )
        .await;
        if ran.is_err()
            && let Some((i, began)) = flow.running.take()
        {
            let step = &spec.steps[i];
            let phases = std::mem::take(&mut flow.phases);
            cert_expiry = earliest(cert_expiry, phases.cert_expiry);
            let failure = Failure::new(
                Outcome::Timeout,
                format!(
                    "no complete response within the monitor's {} (the whole flow)",
                    humantime::format_duration(spec.timeout)
                ),
            );
            // Cut before a response: its conditions are still recorded, as for one request.
            let verdict = if phases.status.is_none() {
                verdict::without_response(
                    &step_spec(spec, step),
                    &Assertions::compile(&step.assertions),
                    began.elapsed(),
                    failure,
                )
            } else {
                (failure.outcome, Some(failure.message), Vec::new())
            };
            flow.results
                .push(step_result(step, &phases, began, verdict));
        }
        let total_us = micros(start.elapsed());
        let mut timings = Timings {
            total_us,
            ..Timings::default()
        };
        let mut response_size = None;
        let mut assertions = Vec::new();
        let mut failure = None;
        for (i, r) in flow.results.iter().enumerate() {
            timings.dns_us = add(timings.dns_us, r.timings.dns_us);
            timings.connect_us = add(timings.connect_us, r.timings.connect_us);
            timings.tls_us = add(timings.tls_us, r.timings.tls_us);
            timings.ttfb_us = add(timings.ttfb_us, r.timings.ttfb_us);
            response_size = add(response_size, r.response_size);
            assertions.extend(r.assertions.iter().map(|a| AssertionResult {
                condition: format!("{}: {}", r.name, a.condition),
                passed: a.passed,
                actual: a.actual.clone(),
            }));
            if failure.is_none() && r.outcome != Outcome::Ok {
                let error = r.error.as_deref().unwrap_or("failed");
                failure = Some((r.outcome, format!("step {} {:?}: {error}", i + 1, r.name)));
            }
        }
        let (outcome, error) = failure.map_or((Outcome::Ok, None), |(o, e)| (o, Some(e)));
        metrics::counter!(crate::metric::CHECKS, "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!(crate::metric::CHECK_DURATION).record(total_us as f64 / 1e6);
        ProbeResult {
            event_id: Uuid::now_v7(),
            monitor_id: spec.id.clone(),
            region: self.region().to_owned(),
            agent: self.agent().to_owned(),
            scheduled_at,
            event_time,
            method: METHOD.to_owned(),
            url: spec.url.clone(),
            status_code: flow.results.last().and_then(|r| r.status_code),
            outcome,
            error,
            timings,
            response_size,
            assertions,
            tls_cert_expiry: cert_expiry,
            steps: flow.results,
        }
    }

    /// The steps, in order, until one fails; each result lands in `flow` as it completes.
    async fn run_flow(
        &self,
        spec: &MonitorSpec,
        flow: &mut Flow,
        cert_expiry: &mut Option<Timestamp>,
    ) {
        let base = match self
            .references
            .expand(&spec.url)
            .map_err(|e| format!("url: {e}"))
            .and_then(|u| Url::parse(&u).map_err(|e| format!("url: {e}")))
        {
            Ok(base) => base,
            Err(message) => {
                if let Some(step) = spec.steps.first() {
                    flow.results.push(step_result(
                        step,
                        &Phases::default(),
                        Instant::now(),
                        (Outcome::InvalidUrl, Some(message), Vec::new()),
                    ));
                }
                return;
            }
        };
        let raw = raw_needed(&spec.steps);
        for (i, step) in spec.steps.iter().enumerate() {
            let began = Instant::now();
            flow.running = Some((i, began));
            flow.phases = Phases::default();
            let verdict = self.run_step(spec, step, &base, flow, began, raw[i]).await;
            flow.running = None;
            let phases = std::mem::take(&mut flow.phases);
            *cert_expiry = earliest(*cert_expiry, phases.cert_expiry);
            let failed = verdict.0 != Outcome::Ok;
            flow.results
                .push(step_result(step, &phases, began, verdict));
            if failed {
                return;
            }
        }
    }

    /// One step: its request, its assertions, then its extractions.
    async fn run_step(
        &self,
        spec: &MonitorSpec,
        step: &StepSpec,
        base: &Url,
        flow: &mut Flow,
        began: Instant,
        keep_raw: bool,
    ) -> verdict::Verdict {
        let one = step_spec(spec, step);
        let assertions = Assertions::compile(&step.assertions);
        let values = &flow.values;
        let expand = |text: &str| {
            self.references
                .expand_in_step(text, &|s: &str, v: &str| values.resolve(s, v))
        };
        let prepared = match expand(&step.url)
            .map_err(|e| format!("url: {e}"))
            .and_then(|u| base.join(&u).map_err(|e| format!("url: {e}")))
        {
            Ok(url) if url.origin() == base.origin() || names_its_origin(&step.url) => {
                self.prepare_with(&one, url, &expand).await
            }
            Ok(url) => {
                let bare = without_credentials(one.clone());
                match secret_for_elsewhere(&bare) {
                    Some(why) => Err(Failure::new(Outcome::Blocked, why)),
                    None => self.prepare_with(&bare, url, &expand).await,
                }
            }
            Err(message) => Err(Failure::new(Outcome::InvalidUrl, message)),
        };
        let exchange = match prepared {
            Ok(request) => self.fetch(&one, request, &mut flow.phases).await,
            Err(failure) => Err(failure),
        };
        let exchange = match exchange {
            Ok(exchange) => exchange,
            Err(failure) => {
                return verdict::without_response(&one, &assertions, began.elapsed(), failure);
            }
        };
        let verdict = self.verdict(&one, &assertions, began, &flow.phases, &exchange);
        if verdict.0 != Outcome::Ok {
            return verdict;
        }
        let response = Response::new(
            Some(exchange.status),
            began.elapsed(),
            &exchange.headers,
            &exchange.body,
            flow.phases.expires_in_ms(),
        );
        let mut extracted = BTreeMap::new();
        for (name, extract) in &step.extract {
            let value = Extractor::compile(extract)
                .map_err(|e| e.to_string())
                .and_then(|x| {
                    x.extract(&response).ok_or_else(|| {
                        format!("{} does not resolve in the response", extract.from())
                    })
                });
            match value {
                Ok(value) => {
                    extracted.insert(name.clone(), value);
                }
                Err(reason) => {
                    return (
                        Outcome::Assertion,
                        Some(format!("extract {name}: {reason}")),
                        verdict.2,
                    );
                }
            }
        }
        let (headers, body) = match keep_raw {
            true => (exchange.headers, exchange.body),
            false => (HeaderMap::new(), Vec::new()),
        };
        flow.values.0.push(Taken {
            name: step.name.clone(),
            status: exchange.status,
            headers,
            body,
            extracted,
        });
        verdict
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.as_millis() < x.as_millis() { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

fn step_result(
    step: &StepSpec,
    phases: &Phases,
    began: Instant,
    (outcome, error, assertions): verdict::Verdict,
) -> StepResult {
    StepResult {
        name: step.name.clone(),
        method: step.method.as_str().to_owned(),
        url: step.url.clone(),
        status_code: phases.status,
        outcome,
        error,
        timings: phases.timings(micros(began.elapsed())),
        response_size: phases.size,
        assertions,
    }
}
