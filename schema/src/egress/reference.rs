//! `${…}` references in monitor specs: `${secret:NAME}` names a stored secret, `${NAME}` an
//! environment variable of the probe runner (expanded only when the operator allow-lists it),
//! `${steps.STEP.VALUE}` a value taken from an earlier step of a multi-step check, and `$${`
//! writes a literal `${`. Expansion is one pass: what a reference expands to is never read
//! again for references, so a value a server sent cannot name a secret. One parser serves write-time validation and probe-time
//! expansion, so both always agree on what a spec references.

use crate::event::is_secret_name;

/// One reference found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `${NAME}`: an environment variable of the probe runner.
    Env(&'a str),
    /// `${secret:NAME}`: a stored secret.
    Secret(&'a str),
    /// `${steps.STEP.VALUE}`: `VALUE` (an extracted name, `status`, `body`, `body.PATH` or
    /// `header.NAME`) of the earlier step `STEP` of a multi-step check.
    Step {
        /// The step's name.
        step: &'a str,
        /// What of it.
        value: &'a str,
    },
}

/// Replaces every reference with what `resolve` gives for it; the first error (a syntax error,
/// or `resolve`'s) stops the expansion.
pub fn expand(
    text: &str,
    mut resolve: impl FnMut(Reference<'_>) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            out.push_str(&resolve(parse(&after[..end])?)?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Every reference in `text`, in order, or the first syntax error.
pub fn references(text: &str) -> Result<Vec<Reference<'_>>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            found.push(parse(&after[..end])?);
            rest = &after[end + 1..];
        } else {
            rest = &tail[1..];
        }
    }
    Ok(found)
}

fn parse(inner: &str) -> Result<Reference<'_>, String> {
    if let Some(name) = inner.strip_prefix("secret:") {
        return if is_secret_name(name) {
            Ok(Reference::Secret(name))
        } else {
            Err(format!(
                "invalid secret name {name:?} (1–64 of A-Z, a-z, 0-9, '_' or '-')"
            ))
        };
    }
    if let Some(rest) = inner.strip_prefix("steps.") {
        return match rest.split_once('.') {
            Some((step, value)) if !step.is_empty() && !value.is_empty() => {
                Ok(Reference::Step { step, value })
            }
            _ => Err(format!(
                "invalid step reference ${{{inner}}} (${{steps.STEP.VALUE}})"
            )),
        };
    }
    if is_env_name(inner) {
        Ok(Reference::Env(inner))
    } else {
        Err(format!("invalid variable name {inner:?}"))
    }
}

/// Whether `name` may name an environment variable in a reference (`A-Z a-z 0-9 _`).
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(r: Reference<'_>) -> Result<String, String> {
        match r {
            Reference::Env("HOST") => Ok("api.example.com".into()),
            Reference::Env(name) => Err(format!("{name} is not set")),
            Reference::Secret(name) => Ok(format!("<{name}>")),
            Reference::Step { step, value } => Ok(format!("[{step}:{value}]")),
        }
    }

    #[test]
    fn expands_escapes_and_reports_syntax() {
        assert_eq!(
            expand("https://${HOST}/x?k=${secret:api-key}", vars).unwrap(),
            "https://api.example.com/x?k=<api-key>"
        );
        assert_eq!(
            expand("cost $5, $${HOST}", vars).unwrap(),
            "cost $5, ${HOST}"
        );
        assert_eq!(
            expand("${MISSING}", vars).unwrap_err(),
            "MISSING is not set"
        );
        assert_eq!(
            expand("${HOST", vars).unwrap_err(),
            "unclosed ${ in \"${HOST\""
        );
        assert_eq!(
            expand("${A-B}", vars).unwrap_err(),
            "invalid variable name \"A-B\""
        );
        assert!(
            expand("${secret:}", vars)
                .unwrap_err()
                .contains("secret name")
        );
        assert_eq!(
            expand("Bearer ${steps.login.body.token}", vars).unwrap(),
            "Bearer [login:body.token]"
        );
        assert!(
            expand("${steps.login}", vars)
                .unwrap_err()
                .contains("invalid step reference")
        );
    }

    #[test]
    fn expansion_is_one_pass() {
        // A value that looks like a reference stays text.
        let echo = |r: Reference<'_>| match r {
            Reference::Step { .. } => Ok("${secret:db}".to_owned()),
            Reference::Secret(_) => Err("read a secret".to_owned()),
            Reference::Env(_) => Err("read the environment".to_owned()),
        };
        assert_eq!(expand("x=${steps.a.v}", echo).unwrap(), "x=${secret:db}");
    }

    #[test]
    fn lists_references_but_not_escapes() {
        assert_eq!(
            references("${A}/$${B}/${secret:c_1}$").unwrap(),
            [Reference::Env("A"), Reference::Secret("c_1")]
        );
        assert_eq!(references("plain").unwrap(), []);
        assert!(references("${").is_err());
    }
}
