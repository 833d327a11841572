//! Search-box text to a safe SQLite FTS5 `MATCH` expression: every term a quoted string, so
//! no FTS5 syntax (columns, `NEAR`, `AND`/`OR`/`NOT`, `*`, `^`, parentheses) reaches the engine.

use crate::ApiError;

pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_TERMS: usize = 16;

/// Combining marks that `char::is_alphanumeric` misses (e.g. the Devanagari virama), so words
/// of those scripts are not cut apart. FTS5 tokenizes inside each string anyway, so a mark
/// missing here only splits one term into two.
const MARKS: &[(char, char)] = &[
    ('\u{0300}', '\u{036F}'),
    ('\u{0483}', '\u{0489}'),
    ('\u{0591}', '\u{05BD}'),
    ('\u{0610}', '\u{061A}'),
    ('\u{064B}', '\u{065F}'),
    ('\u{06D6}', '\u{06ED}'),
    ('\u{0900}', '\u{0963}'),
    ('\u{0966}', '\u{0DFF}'),
    ('\u{0E31}', '\u{0E4E}'),
    ('\u{1AB0}', '\u{1AFF}'),
    ('\u{1DC0}', '\u{1DFF}'),
    ('\u{20D0}', '\u{20FF}'),
    ('\u{3099}', '\u{309A}'),
    ('\u{FE20}', '\u{FE2F}'),
];

fn is_term_char(c: char) -> bool {
    c.is_alphanumeric() || MARKS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Turns free text into an FTS5 query matching rows that contain every term: terms are runs
/// of letters, digits and marks (any script); at most [`MAX_TERMS`] are kept, each becomes
/// `"term"` (quotes doubled), joined by spaces (implicit AND), and the last gets a prefix `*`
/// when it has at least 2 characters, so results follow typing.
///
/// Errors (400 `invalid_query`): empty text, no terms (only punctuation or emoji), or more
/// than [`MAX_QUERY_CHARS`] characters.
pub fn fts_query(raw: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(invalid("search query is empty"));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!("search query is longer than {MAX_QUERY_CHARS} characters")));
    }
    // A run of marks alone (a stray accent or vowel sign) has nothing to match.
    let terms: Vec<&str> = text
        .split(|c: char| !is_term_char(c))
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .take(MAX_TERMS)
        .collect();
    let Some(last) = terms.len().checked_sub(1) else {
        return Err(invalid("search query has no letters or digits"));
    };
    let quoted: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let star = if i == last && term.chars().count() >= 2 { "*" } else { "" };
            format!("\"{}\"{star}", term.replace('"', "\"\""))
        })
        .collect();
    Ok(quoted.join(" "))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> String {
        fts_query(raw).unwrap_or_else(|e| panic!("{raw:?}: {e:?}"))
    }

    fn rejected(raw: &str) -> bool {
        matches!(fts_query(raw), Err(e) if e.status == 400 && e.code == "invalid_query")
    }

    /// One or more space-separated `"..."` groups, only the last possibly followed by `*`,
    /// and every `"` inside a group doubled.
    fn is_safe_fts(s: &str) -> bool {
        let groups: Vec<&str> = s.split(' ').collect();
        groups.iter().enumerate().all(|(i, g)| {
            let g = if i + 1 == groups.len() { g.strip_suffix('*').unwrap_or(g) } else { g };
            g.len() >= 3
                && g.starts_with('"')
                && g.ends_with('"')
                && g[1..g.len() - 1].replace("\"\"", "").find('"').is_none()
        })
    }

    #[test]
    fn plain_words_become_quoted_terms_with_a_prefix_on_the_last() {
        assert_eq!(q("hello world"), r#""hello" "world"*"#);
        assert_eq!(q("  Hello   WORLD\t"), r#""Hello" "WORLD"*"#);
        assert_eq!(q("a b"), r#""a" "b""#);
        assert_eq!(q("x"), r#""x""#);
    }

    #[test]
    fn fts5_syntax_is_neutralised() {
        assert_eq!(q("a OR b"), r#""a" "OR" "b""#);
        assert_eq!(q("NOT secret"), r#""NOT" "secret"*"#);
        assert_eq!(q("title:secret"), r#""title" "secret"*"#);
        assert_eq!(q("NEAR(a b, 3)"), r#""NEAR" "a" "b" "3""#);
        assert_eq!(q("(a)"), r#""a""#);
        assert_eq!(q("^start"), r#""start"*"#);
        assert_eq!(q("pre*"), r#""pre"*"#);
        assert_eq!(q("\"quoted phrase\""), r#""quoted" "phrase"*"#);
        assert_eq!(q("e-mail"), r#""e" "mail"*"#);
        assert_eq!(q("NEAR("), r#""NEAR"*"#);
        for raw in ["\"", "*", "-", "()", "^", "  ", "", ":*\"-"] {
            assert!(rejected(raw), "{raw:?}");
        }
    }

    #[test]
    fn letters_digits_and_marks_of_any_script_are_kept() {
        assert_eq!(q("café"), r#""café"*"#);
        assert_eq!(q("日本語"), r#""日本語"*"#);
        assert_eq!(q("nai\u{0308}ve"), "\"nai\u{0308}ve\"*");
        assert_eq!(q("नमस्ते"), "\"नमस्ते\"*");
        assert_eq!(q("2024 ok👍"), r#""2024" "ok"*"#);
        assert!(rejected("🎉🎉 ❤️ 👍🏽"));
        assert!(rejected("\u{0301}"));
    }

    #[test]
    fn long_queries_are_rejected_and_extra_terms_dropped() {
        assert!(rejected(&"a".repeat(MAX_QUERY_CHARS + 1)));
        assert!(fts_query(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
        let twenty: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        let out = q(&twenty.join(" "));
        assert_eq!(out.split(' ').count(), MAX_TERMS);
        assert!(out.ends_with(r#""t15"*"#));
    }

    #[test]
    fn random_input_is_either_rejected_or_safe_fts5() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let pool: Vec<char> = "ab Z9\"*^():-+.,'\\ \t\nNEAROTé日\u{0301}\u{094D}🎉\u{FE0F}{}[]|&~".chars().collect();
        let mut ok = 0;
        for _ in 0..500 {
            let len = next() % 40;
            let raw: String = (0..len).map(|_| pool[next() % pool.len()]).collect();
            match fts_query(&raw) {
                Ok(out) => {
                    ok += 1;
                    assert!(is_safe_fts(&out), "{raw:?} -> {out:?}");
                }
                Err(e) => assert_eq!((e.status, e.code), (400, "invalid_query")),
            }
        }
        assert!(ok > 100, "too few accepted inputs to mean anything: {ok}");
    }
}
