//! Resource ids: random, opaque, prefixed by kind (`usr_`, `ses_`, `key_`, ...).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};

/// Length of the random part: 16 bytes in unpadded base64url.
const RANDOM_LEN: usize = 22;

/// A new id: `{prefix}_` followed by 128 random bits.
pub fn new_id(prefix: &str, random: [u8; 16]) -> String {
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(random))
}

/// True when `s` has the shape of an id of this kind; anything else cannot exist, so
/// handlers answer 404 without a query.
pub fn is_valid(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_')).is_some_and(|r| {
        r.len() == RANDOM_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// An id type of one kind: made with `new` from fresh random bytes, or by `parse` from
/// untrusted text (a path parameter) when it has this kind's shape. Read from rows and
/// written in views as the plain string.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new(random: [u8; 16]) -> Self {
                Self(new_id($prefix, random))
            }

            /// The id in `s`, if `s` has this kind's shape (anything else cannot exist).
            pub fn parse(s: &str) -> Option<Self> {
                is_valid($prefix, s).then(|| Self(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// A user (`usr_`).
    UserId,
    "usr"
);
id_type!(
    /// A login session, the family of its refresh tokens (`ses_`).
    SessionId,
    "ses"
);
id_type!(
    /// An API key (`key_`).
    ApiKeyId,
    "key"
);
id_type!(
    /// A conversation (`cnv_`).
    ConversationId,
    "cnv"
);
id_type!(
    /// A message of a conversation (`msg_`).
    MessageId,
    "msg"
);
id_type!(
    /// An admin audit entry (`aud_`).
    AuditId,
    "aud"
);
id_type!(
    /// A concurrent-stream slot (`str_`).
    StreamId,
    "str"
);
id_type!(
    /// A usage record (`use_`).
    UsageRecordId,
    "use"
);
id_type!(
    /// A task of the user's to-do list (`tsk_`).
    TaskId,
    "tsk"
);
id_type!(
    /// A note kept about the user (`mem_`).
    MemoryId,
    "mem"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_128_random_bits() {
        let id = new_id("usr", [7; 16]);
        assert!(id.starts_with("usr_"));
        assert_eq!(id.len(), 4 + RANDOM_LEN);
        assert!(is_valid("usr", &id));
        assert_ne!(new_id("usr", [1; 16]), new_id("usr", [2; 16]));
    }

    #[test]
    fn foreign_or_malformed_ids_are_rejected() {
        let id = new_id("usr", [7; 16]);
        assert!(!is_valid("key", &id));
        assert!(!is_valid("usr", &id[..id.len() - 1]));
        assert!(!is_valid("usr", "usr_'; DROP TABLE users;--xx"));
        assert!(!is_valid("usr", ""));
    }

    #[test]
    fn typed_ids_parse_only_their_own_kind() {
        let id = ConversationId::new([7; 16]);
        assert!(id.starts_with("cnv_"));
        assert_eq!(ConversationId::parse(&id), Some(id.clone()));
        assert_eq!(MessageId::parse(&id), None);
        assert_eq!(ConversationId::parse("cnv_short"), None);
        assert_eq!(UserId::parse(&new_id("usr", [1; 16])).map(String::from), Some(new_id("usr", [1; 16])));
    }

    #[test]
    fn typed_ids_are_plain_strings_in_json() {
        let id = MessageId::new([3; 16]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
    }
}
