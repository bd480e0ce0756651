//! Compiled [`Matcher`]s: the form routes, silences and maintenance windows evaluate.
//!
//! Regular expressions are anchored (`^(?:…)$`, as in Alertmanager) and size-limited; a label
//! an alert does not have compares as the empty string.

use regex::{Regex, RegexBuilder};
use vigil_schema::{MatchOp, Matcher};

use crate::alert::Labels;

/// Largest compiled regular expression, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A list of matchers, all of which must hold.
#[derive(Debug, Clone, Default)]
pub struct MatcherSet(Vec<Compiled>);

#[derive(Debug, Clone)]
struct Compiled {
    label: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String),
    NotEqual(String),
    Regex(Regex),
    NotRegex(Regex),
}

impl MatcherSet {
    /// Compiles the matchers; the error names the index of the bad one and why.
    pub fn compile(matchers: &[Matcher]) -> Result<Self, (usize, String)> {
        matchers
            .iter()
            .enumerate()
            .map(|(i, m)| compile(m).map_err(|reason| (i, reason)))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether every matcher holds for `labels` (true when there are none).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| {
            let value = labels.get(&m.label).map_or("", String::as_str);
            match &m.test {
                Test::Equal(v) => value == v,
                Test::NotEqual(v) => value != v,
                Test::Regex(r) => r.is_match(value),
                Test::NotRegex(r) => !r.is_match(value),
            }
        })
    }

    /// Whether there are no matchers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn compile(m: &Matcher) -> Result<Compiled, String> {
    let regex = || {
        RegexBuilder::new(&format!("^(?:{})$", m.value))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regular expression {:?}: {e}", m.value))
    };
    let test = match m.op {
        MatchOp::Equal => Test::Equal(m.value.clone()),
        MatchOp::NotEqual => Test::NotEqual(m.value.clone()),
        MatchOp::Regex => Test::Regex(regex()?),
        MatchOp::NotRegex => Test::NotRegex(regex()?),
    };
    Ok(Compiled {
        label: m.label.clone(),
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(matchers: &[&str]) -> MatcherSet {
        let parsed: Vec<Matcher> = matchers.iter().map(|m| m.parse().unwrap()).collect();
        MatcherSet::compile(&parsed).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn operators_and_anchoring() {
        let l = labels(&[("monitor", "checkout-api"), ("severity", "critical")]);
        assert!(set(&[]).matches(&l));
        assert!(set(&["severity=critical", "monitor=~checkout-.*"]).matches(&l));
        assert!(
            !set(&["severity=critical", "monitor=~checkout"]).matches(&l),
            "anchored"
        );
        assert!(set(&["monitor!~web|mobile", "severity!=info"]).matches(&l));
        assert!(!set(&["monitor!~checkout-api|x"]).matches(&l));
        // A missing label is the empty string.
        assert!(set(&["region="]).matches(&l));
        assert!(set(&["region!=eu-west"]).matches(&l));
        assert!(!set(&["region=~.+"]).matches(&l));
    }

    #[test]
    fn bad_regex_names_its_index() {
        let parsed: Vec<Matcher> = vec!["a=b".parse().unwrap(), "b=~(".parse().unwrap()];
        let (i, reason) = MatcherSet::compile(&parsed).unwrap_err();
        assert_eq!(i, 1);
        assert!(
            reason.starts_with("invalid regular expression \"(\""),
            "{reason}"
        );
    }
}
