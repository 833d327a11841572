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

/// Most terms of a message's text that [`fts_any_query`] keeps.
pub const MAX_ANY_TERMS: usize = 32;

/// Common English words that would make nearly every row relevant.
const STOP_WORDS: &[&str] = &[
    "about", "also", "and", "any", "are", "been", "but", "can", "could", "did", "does", "for", "from", "had", "has",
    "have", "how", "into", "its", "just", "not", "our", "out", "please", "should", "some", "than", "that", "the",
    "their", "them", "then", "there", "they", "this", "was", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "would", "you", "your",
];

/// Turns a message's text into an FTS5 query matching rows that contain any of its words (for
/// relevance ranking, not a search box): terms are cut as in [`fts_query`], those shorter than
/// 3 characters and common English words are left out, repeats (ignoring case) dropped, at most
/// [`MAX_ANY_TERMS`] kept, each quoted, joined with `OR`. `None` when no word is left.
pub fn fts_any_query(text: &str) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for term in text.split(|c: char| !is_term_char(c)) {
        let lower = term.to_lowercase();
        if term.chars().count() < 3 || !term.chars().any(char::is_alphanumeric) || STOP_WORDS.contains(&lower.as_str())
        {
            continue;
        }
        if !seen.contains(&lower) {
            seen.push(lower);
        }
        if seen.len() == MAX_ANY_TERMS {
            break;
        }
    }
    let quoted: Vec<String> = seen.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
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

    #[test]
    fn a_message_becomes_quoted_terms_joined_by_or_without_short_or_common_words() {
        assert_eq!(fts_any_query("What is my cat's name?").as_deref(), Some(r#""cat" OR "name""#));
        assert_eq!(fts_any_query("Peanuts, peanuts and PEANUTS").as_deref(), Some(r#""peanuts""#));
        assert_eq!(fts_any_query("title:secret OR NEAR(x)").as_deref(), Some(r#""title" OR "secret" OR "near""#));
        assert_eq!(fts_any_query("a b of to is it"), None);
        assert_eq!(fts_any_query("🎉 !!"), None);
        let many: Vec<String> = (0..50).map(|i| format!("word{i}")).collect();
        assert_eq!(fts_any_query(&many.join(" ")).map(|q| q.split(" OR ").count()), Some(MAX_ANY_TERMS));
    }

    #[test]
    fn random_text_never_makes_an_unsafe_any_query() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let pool: Vec<char> = "abc Z9\"*^():-+.,'\\ \t\nNEAROTé日\u{0301}🎉{}[]|&~".chars().collect();
        for _ in 0..500 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 60) as usize;
            let raw: String = (0..len).map(|i| pool[(state as usize >> (i % 40)) % pool.len()]).collect();
            if let Some(q) = fts_any_query(&raw) {
                for group in q.split(" OR ") {
                    assert!(group.len() >= 2 && group.starts_with('"') && group.ends_with('"'), "{raw:?} -> {q:?}");
                    assert!(group[1..group.len() - 1].replace("\"\"", "").find('"').is_none(), "{raw:?} -> {q:?}");
                }
            }
        }
    }
}
