//! Field checks of [`RuleCondition`]s and the helpers [`RuleSpec::validate`](super::RuleSpec)
//! shares with them: every problem names its field and shows the offending value.

use std::time::Duration;

use super::{MAX_BURN_WINDOWS, MAX_PERIOD, MAX_SPAN, MIN_WINDOW, RuleCondition, SloKind};
use crate::event::monitor::{FieldError, check_slug};

impl RuleCondition {
    pub(super) fn check(&self, p: &mut Problems) {
        let at = |field: &str| format!("condition.{}.{field}", self.kind().as_str());
        match self {
            RuleCondition::ConsecutiveFailures {
                failures,
                successes,
            } => {
                for (field, n) in [("failures", failures), ("successes", successes)] {
                    if *n == 0 {
                        p.push(at(field), "must be ≥ 1");
                    }
                }
            }
            RuleCondition::LatencyPercentile {
                percentile,
                above,
                recover_below,
                window,
            } => {
                if !(*percentile > 0.0 && *percentile < 100.0) {
                    p.push(
                        at("percentile"),
                        format!("must be in (0, 100), got {percentile}"),
                    );
                }
                if above.is_zero() {
                    p.push(at("above"), "must be > 0s");
                }
                match recover_below {
                    Some(r) if r.is_zero() => p.push(at("recover_below"), "must be > 0s"),
                    Some(r) if r > above => p.push(
                        at("recover_below"),
                        format!("must be ≤ above ({}), got {}", show(*above), show(*r)),
                    ),
                    _ => {}
                }
                p.window(at("window"), *window);
            }
            RuleCondition::Availability {
                below,
                recover_above,
                window,
            } => {
                let below_ok = p.ratio(at("below"), *below);
                if let Some(r) = recover_above
                    && p.ratio(at("recover_above"), *r)
                    && below_ok
                    && r < below
                {
                    p.push(
                        at("recover_above"),
                        format!("must be ≥ below ({below}), got {r}"),
                    );
                }
                p.window(at("window"), *window);
            }
            RuleCondition::StatusPattern {
                above,
                recover_below,
                window,
                ..
            } => {
                let above_ok = p.ratio(at("above"), *above);
                p.recover_below(
                    at("recover_below"),
                    *recover_below,
                    above_ok.then_some(*above),
                );
                p.window(at("window"), *window);
            }
            RuleCondition::Anomaly {
                above,
                recover_below,
            } => {
                let above_ok = *above > 0.0 && *above <= 1.0;
                if !above_ok {
                    p.push(at("above"), format!("must be in (0, 1], got {above}"));
                }
                p.recover_below(
                    at("recover_below"),
                    *recover_below,
                    above_ok.then_some(*above),
                );
            }
            RuleCondition::CertificateExpiry { within } => {
                if within.is_zero() {
                    p.push(at("within"), "must be > 0s");
                }
            }
            RuleCondition::BurnRate {
                slo,
                objective,
                period,
                windows,
            } => {
                if let SloKind::Latency { threshold } = slo
                    && threshold.is_zero()
                {
                    p.push(at("slo.latency.threshold"), "must be > 0s");
                }
                if !(*objective > 0.0 && *objective < 1.0) {
                    p.push(
                        at("objective"),
                        format!("must be in (0, 1), got {objective}"),
                    );
                }
                if period.is_zero() {
                    p.push(at("period"), "must be > 0s");
                } else if *period > MAX_PERIOD {
                    p.push(
                        at("period"),
                        format!("must be ≤ {}, got {}", show(MAX_PERIOD), show(*period)),
                    );
                }
                if windows.is_empty() {
                    p.push(at("windows"), "must not be empty");
                } else if windows.len() > MAX_BURN_WINDOWS {
                    p.push(
                        at("windows"),
                        format!(
                            "must have at most {MAX_BURN_WINDOWS} pairs, got {}",
                            windows.len()
                        ),
                    );
                }
                for (i, w) in windows.iter().enumerate() {
                    let field = |name: &str| at(&format!("windows[{i}].{name}"));
                    if w.short < MIN_WINDOW {
                        p.push(
                            field("short"),
                            format!("must be ≥ {}, got {}", show(MIN_WINDOW), show(w.short)),
                        );
                    } else if w.short >= w.long {
                        p.push(
                            field("short"),
                            format!("must be < long ({}), got {}", show(w.long), show(w.short)),
                        );
                    }
                    if w.long > *period {
                        p.push(
                            field("long"),
                            format!("must be ≤ period ({}), got {}", show(*period), show(w.long)),
                        );
                    }
                    if !(w.burn_rate > 0.0 && w.burn_rate.is_finite()) {
                        p.push(
                            field("burn_rate"),
                            format!("must be > 0, got {}", w.burn_rate),
                        );
                    }
                }
            }
            RuleCondition::NoData { intervals } => {
                if *intervals == 0 {
                    p.push(at("intervals"), "must be ≥ 1");
                }
            }
        }
    }
}

/// Field errors found so far.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<FieldError>);

impl Problems {
    pub(super) fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }

    pub(super) fn slug(&mut self, field: impl Into<String>, value: &str) {
        if let Err(reason) = check_slug(value) {
            self.push(field, reason);
        }
    }

    /// Checks a share in [0, 1]; returns whether it is one.
    fn ratio(&mut self, field: String, value: f64) -> bool {
        let valid = (0.0..=1.0).contains(&value);
        if !valid {
            self.push(field, format!("must be in [0, 1], got {value}"));
        }
        valid
    }

    /// Checks a recovery threshold in [0, 1] and, when the firing threshold is valid, ≤ it.
    fn recover_below(&mut self, field: String, value: Option<f64>, above: Option<f64>) {
        let Some(value) = value else { return };
        let field_again = field.clone();
        if self.ratio(field, value)
            && let Some(above) = above
            && value > above
        {
            self.push(
                field_again,
                format!("must be ≤ above ({above}), got {value}"),
            );
        }
    }

    /// Checks the span of a windowed condition.
    fn window(&mut self, field: String, window: Duration) {
        if window < MIN_WINDOW {
            self.push(
                field,
                format!("must be ≥ {}, got {}", show(MIN_WINDOW), show(window)),
            );
        } else if window > MAX_SPAN {
            self.push(
                field,
                format!("must be ≤ {}, got {}", show(MAX_SPAN), show(window)),
            );
        }
    }

    pub(super) fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// A duration in days, hours, minutes, seconds and milliseconds (`40d`, `1h 30m`, `0s`), a
/// form the spec's own parser reads back; months and years are never used.
pub(super) fn show(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return humantime::format_duration(d).to_string();
    }
    let mut rest = d.as_millis();
    let mut parts = Vec::new();
    for (unit, suffix) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ] {
        let n = rest / unit;
        rest %= unit;
        if n > 0 {
            parts.push(format!("{n}{suffix}"));
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of a rule with this condition (YAML).
    fn problems(condition: &str) -> Vec<String> {
        let spec = crate::event::rule::tests::rule(&format!("{{id: r, condition: {condition}}}"));
        match spec.validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn counts_are_at_least_one() {
        assert_eq!(
            problems("{consecutive_failures: {failures: 0, successes: 0}}"),
            [
                "condition.consecutive_failures.failures: must be ≥ 1",
                "condition.consecutive_failures.successes: must be ≥ 1",
            ]
        );
        assert_eq!(
            problems("{no_data: {intervals: 0}}"),
            ["condition.no_data.intervals: must be ≥ 1"]
        );
    }

    #[test]
    fn latency_thresholds_and_windows() {
        assert_eq!(
            problems(
                "{latency_percentile: {percentile: 0, above: 1s, recover_below: 2s, window: 2d}}"
            ),
            [
                "condition.latency_percentile.percentile: must be in (0, 100), got 0",
                "condition.latency_percentile.recover_below: must be ≤ above (1s), got 2s",
                "condition.latency_percentile.window: must be ≤ 1d, got 2d",
            ]
        );
        assert_eq!(
            problems("{latency_percentile: {percentile: 99.9, above: 1s, recover_below: 0s}}"),
            ["condition.latency_percentile.recover_below: must be > 0s"]
        );
        let mut p = Problems::default();
        RuleCondition::LatencyPercentile {
            percentile: f64::NAN,
            above: Duration::from_secs(1),
            recover_below: None,
            window: MAX_SPAN,
        }
        .check(&mut p);
        assert_eq!(
            p.finish().unwrap_err()[0].to_string(),
            "condition.latency_percentile.percentile: must be in (0, 100), got NaN"
        );
    }

    #[test]
    fn ratios_are_between_zero_and_one() {
        assert_eq!(
            problems("{availability: {below: 1.5, recover_above: -0.1}}"),
            [
                "condition.availability.below: must be in [0, 1], got 1.5",
                "condition.availability.recover_above: must be in [0, 1], got -0.1",
            ]
        );
        assert_eq!(
            problems("{availability: {below: 0.99, recover_above: 0.9, window: 1m}}"),
            ["condition.availability.recover_above: must be ≥ below (0.99), got 0.9"]
        );
        assert_eq!(
            problems("{status_pattern: {class: 5xx, above: 0.05, recover_below: 0.1}}"),
            ["condition.status_pattern.recover_below: must be ≤ above (0.05), got 0.1"]
        );
        assert_eq!(
            problems("{status_pattern: {class: error, above: 2}}"),
            ["condition.status_pattern.above: must be in [0, 1], got 2"]
        );
        assert_eq!(
            problems("{anomaly: {above: 0}}"),
            ["condition.anomaly.above: must be in (0, 1], got 0"]
        );
        assert_eq!(
            problems("{anomaly: {above: 0.8, recover_below: 0.9}}"),
            ["condition.anomaly.recover_below: must be ≤ above (0.8), got 0.9"]
        );
        assert_eq!(
            problems("{anomaly: {above: 1, recover_below: 0.5}}"),
            [""; 0]
        );
    }

    #[test]
    fn certificate_horizon_is_positive() {
        assert_eq!(
            problems("{certificate_expiry: {within: 0s}}"),
            ["condition.certificate_expiry.within: must be > 0s"]
        );
        assert_eq!(problems("{certificate_expiry: {within: 14d}}"), [""; 0]);
    }

    #[test]
    fn burn_rate_objective_period_and_windows() {
        assert_eq!(
            problems(
                "{burn_rate: {slo: {latency: {threshold: 0s}}, objective: 1, period: 7d, windows: [
                    {long: 1h, short: 2h, burn_rate: 14.4},
                    {long: 30d, short: 30s, burn_rate: 0}]}}"
            ),
            [
                "condition.burn_rate.slo.latency.threshold: must be > 0s",
                "condition.burn_rate.objective: must be in (0, 1), got 1",
                "condition.burn_rate.windows[0].short: must be < long (1h), got 2h",
                "condition.burn_rate.windows[1].short: must be ≥ 1m, got 30s",
                "condition.burn_rate.windows[1].long: must be ≤ period (7d), got 30d",
                "condition.burn_rate.windows[1].burn_rate: must be > 0, got 0",
            ]
        );
        assert_eq!(
            problems(
                "{burn_rate: {slo: availability, objective: 0.99, period: 400d, windows: []}}"
            ),
            [
                "condition.burn_rate.period: must be ≤ 366d, got 400d",
                "condition.burn_rate.windows: must not be empty",
            ]
        );
        // The default windows (up to 3d) need a period of at least 3d.
        assert_eq!(
            problems("{burn_rate: {slo: availability, objective: 0.99, period: 1d}}"),
            ["condition.burn_rate.windows[2].long: must be ≤ period (1d), got 3d"]
        );
    }

    #[test]
    fn durations_show_in_days_at_most() {
        assert_eq!(show(Duration::ZERO), "0s");
        assert_eq!(show(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(show(Duration::from_secs(40 * 86_400 + 5400)), "40d 1h 30m");
        assert_eq!(show(Duration::from_micros(1500)), "1ms 500us");
        let back: Duration = humantime::parse_duration(&show(Duration::from_secs(93_784))).unwrap();
        assert_eq!(back, Duration::from_secs(93_784));
    }
}
