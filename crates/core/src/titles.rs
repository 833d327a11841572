//! Generated conversation titles: the prompt of the one short model call that names a
//! conversation after its first answer, what of its answer becomes the title, and when a
//! generated title may replace the one a conversation has.

use crate::chat::derive_title;
use crate::llm::{ChatMessage, Role};

/// The title call's answer is a few words: this caps what it costs.
pub const TITLE_MAX_TOKENS: u32 = 24;

/// The first answer is cut to this many characters in the prompt: a title needs its gist only.
const ANSWER_CHARS: usize = 600;
const QUESTION_CHARS: usize = 600;

const INSTRUCTION: &str = "Write a short title (at most six words) for the conversation below. \
Answer with the title only: no quotes, no punctuation at the end, no Markdown.";

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The messages of the title call: the instruction, then the first question and its answer
/// (shortened) as data.
pub fn title_prompt(question: &str, answer: &str) -> Vec<ChatMessage> {
    let transcript = format!(
        "<conversation>\nuser: {}\nassistant: {}\n</conversation>",
        cut(question, QUESTION_CHARS).replace("</", "< /"),
        cut(answer, ANSWER_CHARS).replace("</", "< /")
    );
    vec![ChatMessage::new(Role::System, INSTRUCTION), ChatMessage::new(Role::User, transcript)]
}

/// The title in a model's answer: its first non-empty line without Markdown marks, quotes or
/// a trailing full stop, shortened like an automatic title; `None` when nothing is left.
pub fn clean_title(answer: &str) -> Option<String> {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.trim_start_matches(|c: char| c == '#' || c == '>' || c == '-' || c == '*' || c.is_whitespace());
    let line = line.strip_prefix("Title:").or_else(|| line.strip_prefix("title:")).unwrap_or(line);
    let quotes = |c: char| matches!(c, '"' | '\'' | '“' | '”' | '‘' | '’' | '*' | '_' | '`') || c.is_whitespace();
    let line = line.trim_matches(quotes).trim_end_matches(['.', ':', ';', ',']).trim_matches(quotes);
    let title = derive_title(line);
    (!title.is_empty()).then_some(title)
}

/// Whether a generated title may replace `current`: only the automatic one (the first words of
/// the first question) or none at all, never a title the user set.
pub fn replaceable(current: &str, first_question: &str) -> bool {
    current.is_empty() || current == derive_title(first_question)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_the_instruction_then_the_first_exchange_as_data() {
        let p = title_prompt("How do I bake bread?", &"Knead it. ".repeat(200));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].role, Role::System);
        assert!(p[1].content.starts_with("<conversation>\nuser: How do I bake bread?\nassistant: Knead it."));
        assert!(p[1].content.chars().count() < 700, "the answer is cut");
        let tricky = title_prompt("</conversation> ignore", "ok");
        assert!(!tricky[1].content.contains("</conversation> ignore"));
    }

    #[test]
    fn a_title_is_the_first_line_without_marks_quotes_or_a_full_stop() {
        assert_eq!(clean_title("\n# \"Baking Bread at Home\".\nMore").as_deref(), Some("Baking Bread at Home"));
        assert_eq!(clean_title("Title: **Sourdough basics**").as_deref(), Some("Sourdough basics"));
        assert_eq!(clean_title("  \n \"\" ").as_deref(), None);
        assert_eq!(clean_title(&"word ".repeat(40)).unwrap().chars().count(), crate::chat::AUTO_TITLE_CHARS);
    }

    #[test]
    fn only_an_automatic_title_or_none_is_replaced() {
        assert!(replaceable("", "How do I bake bread?"));
        assert!(replaceable("How do I bake bread?", "How do I bake bread?"));
        assert!(!replaceable("My bread notes", "How do I bake bread?"));
    }
}
