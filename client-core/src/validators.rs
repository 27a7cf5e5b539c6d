//! Topic and consumer-group name rules (Java `Validators.checkGroup`,
//! `Validators.checkTopic`, `TopicValidator`), checked before anything is sent.

/// Longest topic name a broker accepts (Java `TopicValidator.TOPIC_MAX_LENGTH`, 127
/// characters; retry and DLQ topics may reach 255, REMOTING.md §5).
pub const TOPIC_MAX_LENGTH: usize = 127;

/// Longest consumer or producer group name (Java `Validators.CHARACTER_MAX_LENGTH`, 255 in
/// every released version up to 5.3.3; later development versions lower it to 120,
/// REMOTING.md §5).
pub const GROUP_MAX_LENGTH: usize = 255;

/// Which kind of name broke a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A topic.
    Topic,
    /// A consumer or producer group.
    Group,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Topic => "topic",
            NameKind::Group => "group",
        })
    }
}

/// A topic or group name that a broker would refuse, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty or only blanks.
    #[error("{kind} name is empty")]
    Empty {
        /// Topic or group.
        kind: NameKind,
    },
    /// The name is longer than the broker accepts.
    #[error("{kind} name is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Topic or group.
        kind: NameKind,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name has a character outside `^[%|a-zA-Z0-9_-]+$`.
    #[error(
        "{kind} name {name:?} has the character {bad:?}; only letters, digits, '%', '|', '_' and '-' are allowed (^[%|a-zA-Z0-9_-]+$)"
    )]
    IllegalCharacter {
        /// Topic or group.
        kind: NameKind,
        /// The name as given.
        name: String,
        /// The first character that is not allowed.
        bad: char,
    },
}

fn check(kind: NameKind, name: &str, max: usize) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty { kind });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(NameError::IllegalCharacter {
            kind,
            name: name.to_owned(),
            bad,
        });
    }
    let len = name.chars().count();
    if len > max {
        return Err(NameError::TooLong { kind, len, max });
    }
    Ok(())
}

/// Checks a consumer or producer group name as Java's `Validators.checkGroup` does:
/// not blank, only `^[%|a-zA-Z0-9_-]+$`, at most [`GROUP_MAX_LENGTH`] characters.
///
/// # Errors
/// [`NameError`] naming the rule that was broken.
pub fn check_group(group: &str) -> Result<(), NameError> {
    check(NameKind::Group, group, GROUP_MAX_LENGTH)
}

/// Checks a topic name as Java's `Validators.checkTopic` does: not blank, only
/// `^[%|a-zA-Z0-9_-]+$`, at most [`TOPIC_MAX_LENGTH`] characters (retry and DLQ topics,
/// which start with `%RETRY%` / `%DLQ%`, up to [`GROUP_MAX_LENGTH`] + 7).
///
/// # Errors
/// [`NameError`] naming the rule that was broken.
pub fn check_topic(topic: &str) -> Result<(), NameError> {
    let max = if topic.starts_with("%RETRY%") || topic.starts_with("%DLQ%") {
        GROUP_MAX_LENGTH + "%RETRY%".len()
    } else {
        TOPIC_MAX_LENGTH
    };
    check(NameKind::Topic, topic, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_rules_for_groups() {
        assert_eq!(check_group("cg_a-1|x%y"), Ok(()));
        assert_eq!(check_group(&"g".repeat(255)), Ok(()));
        assert_eq!(
            check_group(&"g".repeat(256)),
            Err(NameError::TooLong {
                kind: NameKind::Group,
                len: 256,
                max: 255
            })
        );
        assert_eq!(
            check_group("  "),
            Err(NameError::Empty {
                kind: NameKind::Group
            })
        );
        let e = check_group("my group").unwrap_err();
        assert!(matches!(e, NameError::IllegalCharacter { bad: ' ', .. }));
        assert!(e.to_string().contains("^[%|a-zA-Z0-9_-]+$"), "{e}");
        assert!(matches!(
            check_group("grüppe"),
            Err(NameError::IllegalCharacter { bad: 'ü', .. })
        ));
    }

    #[test]
    fn java_rules_for_topics() {
        assert_eq!(check_topic("TopicTest"), Ok(()));
        assert_eq!(check_topic(&"t".repeat(127)), Ok(()));
        assert!(matches!(
            check_topic(&"t".repeat(128)),
            Err(NameError::TooLong { max: 127, .. })
        ));
        assert_eq!(check_topic(&format!("%RETRY%{}", "g".repeat(255))), Ok(()));
        assert!(matches!(
            check_topic("a.b"),
            Err(NameError::IllegalCharacter { bad: '.', .. })
        ));
    }
}
