//! The one line `p2pctl` prints for a failed command: the error and its causes joined by ": ",
//! leaving out a cause whose text the message already holds (several library errors name their
//! cause in their own text, so `{:#}` would print it twice).

/// `error` and its causes, each said once.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the topology: {0}")]
    struct NamesItsCause(#[source] std::io::Error);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = || std::io::Error::from_raw_os_error(21);
        let error = anyhow::Error::new(NamesItsCause(io()));
        assert_eq!(
            error_text(&error),
            format!("cannot read the topology: {}", io())
        );
    }

    #[test]
    fn context_and_a_new_cause_are_both_said() {
        let error = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("reading x");
        assert_eq!(
            error_text(&error),
            format!("reading x: {}", std::io::Error::from_raw_os_error(2))
        );
    }
}
