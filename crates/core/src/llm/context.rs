//! Context-window selection: which of a conversation's messages are sent upstream so the
//! prompt fits the model's window, by a tokenizer-free size estimate.

use super::{ChatMessage, Role};

/// Tokens charged per message for the role and framing around its content.
pub const MESSAGE_OVERHEAD_TOKENS: u32 = 4;

/// Estimated tokens in `text`: `ceil(chars / 4)`, counting Unicode scalar values.
///
/// The Worker has no tokenizer (they are megabytes of tables), and OpenAI's and Anthropic's
/// tokenizers average about four characters per token on English text and code, so this is
/// close there. It is an underestimate for scripts such as Chinese, Japanese or Korean, where a
/// character is often a whole token or more: a long CJK conversation can still overflow the
/// window, and then the upstream's error is passed on. Billing uses the upstream's reported
/// usage, and this estimate only when the upstream reports none (the record is then flagged).
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = text.chars().count();
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

/// Estimated tokens in `chars` characters of text: `ceil(chars / 4)`, as [`estimate_tokens`].
pub fn estimate_chars(chars: u64) -> u64 {
    chars.div_ceil(4)
}

/// Tokens an image part of a prompt is estimated at, whatever its size: OpenAI's count for a
/// 1024x1024 image at high detail (a low-detail image is 85).
pub const IMAGE_PART_TOKENS: u64 = 765;

/// Characters of base64 audio data estimated as one token: about 10 tokens a second of
/// 128 kbit/s audio (OpenAI counts about 10 tokens a second); less compressed audio counts more.
pub const AUDIO_BASE64_CHARS_PER_TOKEN: u64 = 2000;

/// Tokens an audio part with `base64_chars` characters of data is estimated at (at least one).
pub fn estimate_audio(base64_chars: u64) -> u64 {
    base64_chars.div_ceil(AUDIO_BASE64_CHARS_PER_TOKEN).max(1)
}

fn message_cost(content: &str) -> u32 {
    estimate_tokens(content).saturating_add(MESSAGE_OVERHEAD_TOKENS)
}

/// The estimated prompt size of `messages`: each message's estimate plus its framing.
pub fn estimate_messages(messages: &[ChatMessage]) -> u64 {
    messages.iter().map(|m| u64::from(message_cost(&m.content))).sum()
}

/// The messages to send: the system prompt (as a [`Role::System`] message, when given and not
/// empty) followed by the longest run of newest messages of `branch` (oldest first, ending
/// with the new user message) whose estimated size, with the system prompt's, fits
/// `budget_tokens`, in their original order.
///
/// The newest message is always kept, even alone over budget: the upstream then reports the
/// overflow. When the run would start with a message that is not the user's, that message is
/// dropped too (unless it is the newest), so the history the model sees starts at a user turn.
pub fn select_context(system_prompt: Option<&str>, branch: &[ChatMessage], budget_tokens: u32) -> Vec<ChatMessage> {
    let system = system_prompt.filter(|s| !s.is_empty());
    let mut used = system.map_or(0, message_cost);
    let mut keep = 0;
    for message in branch.iter().rev() {
        let cost = message_cost(&message.content);
        if keep > 0 && used.saturating_add(cost) > budget_tokens {
            break;
        }
        used = used.saturating_add(cost);
        keep += 1;
    }
    let mut kept = branch.get(branch.len().saturating_sub(keep)..).unwrap_or_default();
    while let [first, rest @ ..] = kept {
        if first.role == Role::User || rest.is_empty() {
            break;
        }
        kept = rest;
    }
    system.map(|s| ChatMessage::new(Role::System, s)).into_iter().chain(kept.iter().cloned()).collect()
}

#[cfg(test)]
mod estimate_messages_tests {
    use super::*;

    #[test]
    fn a_prompt_estimate_counts_each_message_and_its_framing() {
        let msgs = [ChatMessage::new(Role::User, "abcdefgh"), ChatMessage::new(Role::Assistant, "")];
        assert_eq!(estimate_messages(&msgs), u64::from(2 + MESSAGE_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS));
        assert_eq!(estimate_messages(&[]), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> ChatMessage {
        ChatMessage::new(Role::User, text)
    }

    fn assistant(text: &str) -> ChatMessage {
        ChatMessage::new(Role::Assistant, text)
    }

    /// A message that costs exactly `tokens` including the overhead.
    fn sized(role: Role, tokens: u32) -> ChatMessage {
        let chars = (tokens - MESSAGE_OVERHEAD_TOKENS) as usize * 4;
        ChatMessage::new(role, "x".repeat(chars))
    }

    fn total(messages: &[ChatMessage]) -> u32 {
        messages.iter().map(|m| message_cost(&m.content)).sum()
    }

    #[test]
    fn estimates_round_up_characters_over_four() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("Hello, world!"), 4);
    }

    #[test]
    fn estimates_count_characters_not_bytes() {
        // 5 characters, 15 bytes of UTF-8.
        assert_eq!(estimate_tokens("こんにちは"), 2);
        // 4 characters, 16 bytes.
        assert_eq!(estimate_tokens("👋👋👋👋"), 1);
        assert_eq!(estimate_tokens("héllo"), 2);
    }

    #[test]
    fn everything_is_kept_when_it_fits() {
        let branch = [user("hi"), assistant("hello"), user("how are you?")];
        let selected = select_context(Some("Be brief."), &branch, 1000);
        assert_eq!(selected.first(), Some(&ChatMessage::new(Role::System, "Be brief.")));
        assert_eq!(selected.get(1..), Some(&branch[..]));
    }

    #[test]
    fn the_newest_messages_that_fit_are_kept_in_order() {
        let branch = [
            sized(Role::User, 10),
            sized(Role::Assistant, 10),
            sized(Role::User, 10),
            sized(Role::Assistant, 10),
            sized(Role::User, 10),
        ];
        let selected = select_context(None, &branch, 35);
        assert_eq!(selected, branch[2..]);
        assert!(total(&selected) <= 35);
    }

    #[test]
    fn the_system_prompt_counts_against_the_budget_and_is_always_first() {
        let system = "s".repeat(4 * 6); // 6 tokens + 4 overhead
        let branch = [sized(Role::User, 10), sized(Role::Assistant, 10), sized(Role::User, 10)];
        let selected = select_context(Some(&system), &branch, 30);
        assert_eq!(selected.first().map(|m| m.role), Some(Role::System));
        assert_eq!(selected.get(1..), Some(&branch[2..]));
        assert!(total(&selected) <= 30);
    }

    #[test]
    fn the_newest_message_is_kept_even_over_budget() {
        let branch = [user("old"), sized(Role::User, 500)];
        assert_eq!(select_context(Some("sys"), &branch, 10).len(), 2);
        assert_eq!(select_context(None, &branch, 0), branch[1..]);
    }

    #[test]
    fn kept_history_starts_at_a_user_turn() {
        let branch = [sized(Role::User, 10), sized(Role::Assistant, 10), sized(Role::User, 10)];
        // The assistant message would fit, but a history starting with it is dropped to one
        // starting at the user turn.
        assert_eq!(select_context(None, &branch, 20), branch[2..]);
        // A lone assistant message that is the newest stays.
        let only = [assistant("hello")];
        assert_eq!(select_context(None, &only, 0), only);
    }

    #[test]
    fn an_empty_system_prompt_or_branch_is_fine() {
        assert!(select_context(Some(""), &[], 100).is_empty());
        assert_eq!(select_context(Some("sys"), &[], 100), [ChatMessage::new(Role::System, "sys")]);
    }
}
