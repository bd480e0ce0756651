//! Rule backtests for the API: the request is parsed and validated here (every rule as on
//! create, problems named `rules[i].field`), then [`vigil_processor::backtest::backtest`] runs the
//! rules over the probes topic through the processor's own pipeline and evaluator, with the
//! deployment's processor settings, and reports what they would have done.
//!
//! A backtest reads up to 7 days of probes and holds every window of that range's series in
//! memory, so one runs at a time per service (others get 429 with `Retry-After`) and each is
//! abandoned after the configured timeout (503).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::{Semaphore, SemaphorePermit};
use vigil_processor::backtest::BacktestRequest;
use vigil_schema::{FieldError, RuleSpec, Timestamp};

use crate::model::BacktestReport;
use crate::params::{self, TimeRange};
use crate::service::{Service, parse_rule};
use crate::{Error, Result};

/// Longest range a backtest covers.
pub const MAX_RANGE: Duration = Duration::from_secs(7 * 86_400);
/// Most transitions a report lists.
pub const MAX_TRANSITIONS: u32 = 10_000;
/// Transitions listed when the request does not say.
pub const DEFAULT_TRANSITIONS: u32 = 1_000;
/// Most rules in one request.
pub const MAX_RULES: usize = 100;
/// Range covered when the request gives no `from`.
const DEFAULT_SPAN: Duration = Duration::from_secs(86_400);

/// How the service runs backtests.
#[derive(Debug, Clone)]
pub struct BacktestSettings {
    /// Kafka bootstrap servers holding the probes topic.
    pub brokers: String,
    /// The probes topic.
    pub probes_topic: String,
    /// The processor settings the rules run with (window length, lateness, sketch accuracy).
    pub processor: vigil_processor::Config,
    /// Longest a backtest may run.
    pub timeout: Duration,
}

/// The one backtest slot of a service.
#[derive(Debug)]
pub(crate) struct Backtester {
    settings: BacktestSettings,
    slot: Semaphore,
    /// When the running backtest times out, for `Retry-After`.
    deadline: Mutex<Option<Instant>>,
}

impl Backtester {
    pub(crate) fn new(settings: BacktestSettings) -> Self {
        Self {
            settings,
            slot: Semaphore::new(1),
            deadline: Mutex::new(None),
        }
    }

    /// The slot, or [`Error::Busy`] saying when the running backtest will have ended.
    fn acquire(&self) -> Result<SemaphorePermit<'_>> {
        match self.slot.try_acquire() {
            Ok(permit) => {
                let deadline = Instant::now() + self.settings.timeout;
                *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
                Ok(permit)
            }
            Err(_) => {
                let deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
                let left = deadline.map_or(Duration::from_secs(1), |d| {
                    d.saturating_duration_since(Instant::now())
                });
                Err(Error::Busy {
                    what: "backtest",
                    retry_after: Duration::from_secs(left.as_secs_f64().ceil() as u64)
                        .max(Duration::from_secs(1)),
                })
            }
        }
    }
}

/// The JSON body, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    rules: Vec<serde_json::Value>,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    default_rule: bool,
    max_transitions: Option<u64>,
}

/// A validated backtest request.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestSpec {
    /// The rules, each valid.
    pub rules: Vec<RuleSpec>,
    /// The range.
    pub range: TimeRange,
    /// Also run the built-in default rule.
    pub default_rule: bool,
    /// Most transitions listed.
    pub max_transitions: u32,
}

fn invalid(errors: Vec<FieldError>) -> Error {
    Error::InvalidSpec {
        kind: "backtest",
        errors,
    }
}

/// A time of the body: RFC 3339, unix ms, `now`, `now-<duration>`, or a duration ago (`6h`).
fn instant(parameter: &str, value: &str, now: Timestamp) -> Result<Timestamp> {
    match humantime::parse_duration(value.trim()) {
        Ok(ago) => {
            let ms = i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
            Ok(now.saturating_add_millis(-ms))
        }
        Err(_) => params::parse_time(parameter, value, now).map_err(|_| {
            Error::bad_parameter(
                parameter,
                format!(
                    "expected RFC 3339, unix milliseconds, `now`, `now-<duration>` or a \
                     duration ago (`6h`), got {value:?}"
                ),
            )
        }),
    }
}

/// Parses and validates a backtest body: 422 naming `rules[i].field` for rules, 400 naming
/// `from`, `to` or `max_transitions` for the range and the limit.
pub fn parse_backtest(body: serde_json::Value, now: Timestamp) -> Result<BacktestSpec> {
    let body: Body = serde_json::from_value(body).map_err(|e| Error::BadBody(e.to_string()))?;
    let mut errors = Vec::new();
    if body.rules.len() > MAX_RULES {
        errors.push(FieldError {
            field: "rules".into(),
            reason: format!("at most {MAX_RULES} rules, got {}", body.rules.len()),
        });
    }
    if body.rules.is_empty() && !body.default_rule {
        errors.push(FieldError {
            field: "rules".into(),
            reason: "give at least one rule, or set default_rule".into(),
        });
    }
    let mut rules = Vec::with_capacity(body.rules.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, value) in body.rules.into_iter().enumerate() {
        match parse_rule(value) {
            Ok(rule) => {
                if let Some(first) = seen.insert(rule.id.clone(), i) {
                    errors.push(FieldError {
                        field: format!("rules[{i}].id"),
                        reason: format!("{:?} is also the id of rules[{first}]", rule.id),
                    });
                }
                rules.push(rule);
            }
            Err(Error::InvalidSpec { errors: found, .. }) => {
                errors.extend(found.into_iter().map(|e| FieldError {
                    field: format!("rules[{i}].{}", e.field),
                    reason: e.reason,
                }));
            }
            Err(Error::BadBody(reason)) => {
                return Err(Error::BadBody(format!("rules[{i}]: {reason}")));
            }
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let to = match &body.to {
        Some(v) => instant("to", v, now)?,
        None => now,
    };
    let from = match &body.from {
        Some(v) => instant("from", v, now)?,
        None => to.saturating_add_millis(-(DEFAULT_SPAN.as_millis() as i64)),
    };
    if to <= from {
        return Err(Error::invalid_parameter(
            "to",
            format!("must be after `from` ({from}), got {to}"),
        ));
    }
    let range = TimeRange { from, to };
    let span = Duration::from_millis(u64::try_from(range.millis()).unwrap_or(u64::MAX));
    if span > MAX_RANGE {
        return Err(Error::invalid_parameter(
            "from",
            format!(
                "the range of {} is longer than the {} a backtest may cover",
                humantime::format_duration(span),
                humantime::format_duration(MAX_RANGE)
            ),
        ));
    }
    let max_transitions = match body.max_transitions {
        None => DEFAULT_TRANSITIONS,
        Some(n) if (1..=u64::from(MAX_TRANSITIONS)).contains(&n) => n as u32,
        Some(n) => {
            return Err(Error::bad_parameter(
                "max_transitions",
                format!("must be between 1 and {MAX_TRANSITIONS}, got {n}"),
            ));
        }
    };
    Ok(BacktestSpec {
        rules,
        range,
        default_rule: body.default_rule,
        max_transitions,
    })
}

impl Service {
    /// Runs a backtest of the rules in a JSON body (see [`parse_backtest`]) over the probes
    /// topic: 429 while another runs, 503 when it runs out of time.
    pub async fn backtest(&self, body: serde_json::Value) -> Result<BacktestReport> {
        let spec = parse_backtest(body, self.now())?;
        let backtester = &self.inner.backtest;
        let _permit = backtester.acquire()?;
        let settings = &backtester.settings;
        let tags: HashMap<String, Vec<String>> = self
            .view()
            .all()
            .iter()
            .map(|m| (m.id.clone(), m.tags.clone()))
            .collect();
        let request = BacktestRequest {
            rules: spec.rules.clone(),
            tags,
            default_rule: spec.default_rule,
            from_ms: spec.range.from.as_millis(),
            to_ms: Some(spec.range.to.as_millis()),
            max_transitions: spec.max_transitions as usize,
        };
        let token = self.hub().shutdown().child_token();
        let started = Instant::now();
        let run = vigil_processor::backtest::backtest(
            &settings.brokers,
            &settings.probes_topic,
            &settings.processor,
            Some(self.clickhouse().clone()),
            request,
            token.clone(),
        );
        let outcome = match tokio::time::timeout(settings.timeout, run).await {
            Ok(Ok(_)) if token.is_cancelled() => {
                Err(Error::Unavailable("the service is shutting down".into()))
            }
            Ok(Ok(report)) => Ok(report.into()),
            Ok(Err(e)) => Err(Error::Processor(e)),
            Err(_) => Err(Error::Timeout {
                what: "backtest",
                after: settings.timeout,
            }),
        };
        let label = match &outcome {
            Ok(_) => "ok",
            Err(Error::Timeout { .. }) => "timeout",
            Err(_) => "error",
        };
        metrics::counter!("vigil_query_backtests_total", "outcome" => label).increment(1);
        metrics::histogram!("vigil_query_backtest_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(
            rules = spec.rules.len(),
            outcome = label,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Backtest finished."
        );
        outcome
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn rule(id: &str) -> serde_json::Value {
        json!({"id": id, "condition": {"availability": {"below": 0.99}}})
    }

    fn fields(err: Error) -> Vec<(String, String)> {
        match err {
            Error::InvalidSpec { kind, errors } => {
                assert_eq!(kind, "backtest");
                errors.into_iter().map(|e| (e.field, e.reason)).collect()
            }
            other => panic!("expected InvalidSpec, got {other}"),
        }
    }

    fn parameter(err: Error) -> String {
        match err {
            Error::BadParameter { parameter, .. } | Error::InvalidParameter { parameter, .. } => {
                parameter
            }
            other => panic!("expected a parameter error, got {other}"),
        }
    }

    #[test]
    fn defaults_and_every_time_form() {
        let spec = parse_backtest(json!({"rules": [rule("a")]}), NOW).unwrap();
        assert_eq!(spec.range.to, NOW);
        assert_eq!(spec.range.millis(), 86_400_000);
        assert_eq!((spec.default_rule, spec.max_transitions), (false, 1_000));
        for (from, to, millis) in [
            ("6h", "now", 6 * 3_600_000),
            ("now-2d", "1h", 47 * 3_600_000),
            ("2023-11-14T00:00:00Z", "2023-11-14T22:13:20Z", 80_000_000),
            ("1699900000000", "now", 100_000_000),
        ] {
            let spec = parse_backtest(
                json!({"rules": [], "default_rule": true, "from": from, "to": to}),
                NOW,
            )
            .unwrap();
            assert_eq!(spec.range.millis(), millis, "{from}..{to}");
        }
    }

    #[test]
    fn rule_problems_name_their_index_and_field() {
        let mut bad = rule("b");
        bad["condition"]["availability"]["below"] = json!(2);
        let err = parse_backtest(json!({"rules": [rule("a"), bad, rule("a")]}), NOW).unwrap_err();
        let got = fields(err);
        let names: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            ["rules[1].condition.availability.below", "rules[2].id"]
        );
        assert_eq!(got[1].1, "\"a\" is also the id of rules[0]");
        // A rule of the wrong shape is a 400 naming its index.
        let err = parse_backtest(json!({"rules": [rule("a"), {"id": "c"}]}), NOW).unwrap_err();
        assert!(
            matches!(&err, Error::BadBody(reason)
                if reason.starts_with("rules[1]: missing field `condition`")),
            "{err}"
        );
        assert_eq!(
            fields(parse_backtest(json!({"rules": []}), NOW).unwrap_err()),
            [(
                "rules".to_owned(),
                "give at least one rule, or set default_rule".to_owned()
            )]
        );
        let err = parse_backtest(json!({"rules": [], "window": "1m"}), NOW).unwrap_err();
        assert!(
            matches!(&err, Error::BadBody(reason) if reason.contains("unknown field `window`")),
            "{err}"
        );
    }

    #[test]
    fn ranges_and_limits_are_400_naming_the_field() {
        let one = |extra: serde_json::Value| {
            let mut body = json!({"rules": [rule("a")]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            parse_backtest(body, NOW)
        };
        let err = one(json!({"from": "8d"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter `from`: the range of 8days is longer than the 7days a backtest \
             may cover"
        );
        assert!(one(json!({"from": "7d"})).is_ok());
        assert_eq!(
            parameter(one(json!({"from": "1h", "to": "2h"})).unwrap_err()),
            "to"
        );
        assert_eq!(
            parameter(one(json!({"from": "yesterday"})).unwrap_err()),
            "from"
        );
        assert_eq!(
            parameter(one(json!({"max_transitions": 10_001})).unwrap_err()),
            "max_transitions"
        );
        assert_eq!(
            parameter(one(json!({"max_transitions": 0})).unwrap_err()),
            "max_transitions"
        );
        assert_eq!(
            one(json!({"max_transitions": 10_000}))
                .unwrap()
                .max_transitions,
            10_000
        );
    }

    #[tokio::test]
    async fn one_backtest_at_a_time_and_the_second_is_told_when_to_retry() {
        let backtester = Backtester::new(BacktestSettings {
            brokers: String::new(),
            probes_topic: String::new(),
            processor: vigil_processor::Config::default(),
            timeout: Duration::from_secs(30),
        });
        let permit = backtester.acquire().unwrap();
        match backtester.acquire() {
            Err(Error::Busy { retry_after, .. }) => {
                assert!(
                    retry_after <= Duration::from_secs(30)
                        && retry_after >= Duration::from_secs(29)
                );
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(permit);
        assert!(backtester.acquire().is_ok());
    }
}
