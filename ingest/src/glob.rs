//! Glob matching as conditions' `pat()` and the OpenAPI import's path filters use it: `*` any
//! run of characters (`/` included), `?` exactly one.

/// Whether `text` matches `pattern` as a whole.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob;

    /// Path templates as the OpenAPI import's filters match them.
    #[test]
    fn globs() {
        assert!(glob("/pets*", "/pets/{petId}"));
        assert!(glob("*/inventory", "/store/inventory"));
        assert!(glob("/p?ts", "/pets"));
        assert!(!glob("/pets", "/pets/1"));
    }
}
