//! Values taken from a response for the later steps of a multi-step check: a placeholder as
//! conditions read it, optionally narrowed by a regular expression.

use vigil_schema::Extract;

use super::{Function, Operand, ParseError, Response, apply, parse_operand};

/// A compiled [`Extract`].
#[derive(Debug, Clone)]
pub struct Extractor {
    function: Function,
    placeholder: super::Placeholder,
    regex: Option<regex::Regex>,
}

impl Extractor {
    /// Compiles `extract`: its placeholder (`[BODY].token`, `$.items[0].id`,
    /// `[HEADER].location`, `[STATUS]`, `len(…)`) and its regex, if any.
    pub fn compile(extract: &Extract) -> Result<Self, ParseError> {
        let (from, regex) = match extract {
            Extract::Placeholder(from) => (from, None),
            Extract::Regex { from, regex } => {
                let compiled = vigil_schema::compile_regex(regex)
                    .map_err(|e| ParseError(format!("invalid regex {regex:?}: {e}")))?;
                (from, Some(compiled))
            }
        };
        match parse_operand(from.trim())? {
            Operand::Placeholder(function, placeholder) => Ok(Self {
                function,
                placeholder,
                regex,
            }),
            _ => Err(ParseError(format!(
                "extracts from a placeholder ([BODY].token, $.id, [HEADER].name, [STATUS]), \
                 got {from:?}"
            ))),
        }
    }

    /// The value in `response`: the placeholder's value as conditions show it (a JSON string
    /// without its quotes, a number as written, anything else as its JSON text), then the
    /// regex's first group (or its match). `None` when the placeholder does not resolve or the
    /// regex does not match.
    pub fn extract(&self, response: &Response<'_>) -> Option<String> {
        let value = apply(self.function, &self.placeholder, response)?.render();
        let Some(regex) = &self.regex else {
            return Some(value);
        };
        let captures = regex.captures(&value)?;
        captures
            .get(1)
            .or_else(|| captures.get(0))
            .map(|m| m.as_str().to_owned())
    }
}
